"Search: CLI round trip, bad inputs, interrupted and resumed indexing."
import json, sys
from pathlib import Path
import numpy as np
import pytest, torch
from conftest import cli, run
import hat_nb.search as hs
from hat_nb.data import make_fixture
from hat_nb.config import tiny_config
from hat_nb.model import HATModel, save_pretrained

HAT = Path(sys.executable).parent/'hat-nb'

@pytest.fixture(scope='session')   # (session: the slow-first order splits a module's tests)
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('search')
    torch.manual_seed(0)
    model = save_pretrained(HATModel(tiny_config()).eval(), tmp/'model')
    imgs = make_fixture(tmp/'data', 'flickr', n=9)/'images'
    (imgs/'readme.md').write_text('not an image'); (imgs/'broken.jpg').write_bytes(b'\xff\xd8 truncated')
    return tmp, model, imgs

@pytest.mark.slow
def test_cli_index_and_search(setup):
    """`hat-nb index` in two processes (`torchrun`, gloo on the CPU) writes the index one process writes (same rows, token
    files byte for byte) and reports once; then `search` and `search-text` from the command line."""
    tmp, model, imgs = setup
    hs.build_index(imgs, model, tmp/'one', shard_size=3, progress=False)
    out = run(sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', HAT, 'index', imgs,
              '--model', model, '--out', tmp/'idx', '--shard-size', '3').stdout
    assert out.count('indexed 9 image(s)') == 1 and 'skipped 1 non-image file(s)' in out and 'unreadable image skipped:' in out and 'broken.jpg' in out
    assert not (tmp/'idx.partial').exists()
    a, b = hs.Searcher(tmp/'one'), hs.Searcher(tmp/'idx')
    assert a.meta['paths'] == b.meta['paths'] and len(a.paths) == 9
    for l in range(a.meta['n_levels']):
        np.testing.assert_array_equal(np.load(tmp/'one'/f'tokens_L{l}.npy'), np.load(tmp/'idx'/f'tokens_L{l}.npy'))
    assert a.query('image number 4', k=5) == b.query('image number 4', k=5)
    hits = json.loads(run(HAT, 'search', tmp/'idx', 'image number 4', '-k', '3', '--json').stdout)
    assert len(hits) == 3 and all(Path(h['path']).suffix == '.png' for h in hits)
    assert hits == sorted(hits, key=lambda h: -h['score'])
    full = json.loads(cli('search', tmp/'idx', 'image number 4', '-k', '3', '--prefilter', '0', '--json').stdout)
    assert len(full) == 3
    (tmp/'caps.txt').write_text('image number 1\na cat\n\nimage number 7\n')
    caps = json.loads(cli('search-text', imgs/'img1.png', '--captions', tmp/'caps.txt', '--model', model, '-k', '3', '--json').stdout)
    assert sorted(c['caption'] for c in caps) == ['a cat', 'image number 1', 'image number 7']

def test_cli_bad_inputs(setup):
    tmp, model, imgs = setup
    (tmp/'empty').mkdir(exist_ok=True)
    r = cli('index', tmp/'empty', '--model', model, '--out', tmp/'x')
    assert r.returncode == 2 and 'no image files found' in r.stderr
    r = cli('search', tmp/'nothing', 'a dog')
    assert r.returncode == 2 and 'not a complete index' in r.stderr
    if not (tmp/'idx').exists(): cli('index', imgs, '--model', model, '--out', tmp/'idx')
    other = save_pretrained(HATModel(tiny_config(embed_dim=16)).eval(), tmp/'other')
    r = cli('search', tmp/'idx', 'a dog', '--model', other)
    assert r.returncode == 2 and 'built with another model' in r.stderr

def test_interrupted_index_resumes(setup, monkeypatch):
    tmp, model, imgs = setup
    ref = hs.build_index(imgs, model, tmp/'ref', shard_size=4, progress=False)
    calls, real = [], hs.load_rgb
    def flaky(p):
        calls.append(p)
        if len(calls) == 6: raise KeyboardInterrupt        # dies inside the second shard
        return real(p)
    monkeypatch.setattr(hs, 'load_rgb', flaky)
    with pytest.raises(KeyboardInterrupt): hs.build_index(imgs, model, tmp/'res', shard_size=4, progress=False)
    assert not (tmp/'res').exists() and (tmp/'res.partial/shard_00000.npz').is_file()
    with pytest.raises(hs.SearchIndexError, match='unfinished build'): hs.Searcher(tmp/'res')
    calls.clear(); monkeypatch.setattr(hs, 'load_rgb', real)
    monkeypatch.setattr(hs, 'load_rgb', lambda p: calls.append(p) or real(p))
    got = hs.build_index(imgs, model, tmp/'res', shard_size=4, progress=False)
    assert len(calls) == 10 - 4                            # the finished shard was not encoded again
    assert got['indexed'] == ref['indexed'] and not (tmp/'res.partial').exists()
    for i in range(3): assert np.array_equal(np.load(tmp/f'res/tokens_L{i}.npy'), np.load(tmp/f'ref/tokens_L{i}.npy'))

def test_index_out_never_replaces_what_it_did_not_create(setup):
    "`--out` mistyped as the image folder, a folder of other files or the model directory: exit 2, every file still there."
    tmp, model, imgs = setup
    docs = tmp/'docs'; docs.mkdir(exist_ok=True); (docs/'paper.tex').write_text('\\section{x}')
    for out, msg in ((imgs, 'is the image folder'), (docs, 'is not a search index (no meta.json)'), (model, 'or is the model'),
                     (imgs.parent, 'holds it')):
        before = sorted(p.name for p in Path(out).iterdir())
        r = cli('index', imgs, '--model', model, '--out', out)
        assert r.returncode == 2 and msg in r.stderr and 'Traceback' not in r.stderr, r.stderr
        assert sorted(p.name for p in Path(out).iterdir()) == before
    assert (docs/'paper.tex').read_text() == '\\section{x}'

def test_index_memory_does_not_grow_with_the_collection(tmp_path):
    """Indexing 4x the images takes no more peak memory than one shard more, beyond the FAISS vectors (the first-stage
    index, n x D floats, held while it is written; x3 for its growth by doubling). One child process builds n, then 4n
    images, its peak resident memory (VmHWM) reset before each build."""
    script = r'''
import sys, json, numpy as np, torch
from pathlib import Path
from PIL import Image
from hat_nb.config import tiny_config
from hat_nb.model import HATModel, save_pretrained
import hat_nb.search as hs
tmp, n, shard = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
model = save_pretrained(HATModel(tiny_config(embed_dim=2048)).eval(), tmp/'model')   # wide tokens: a shard is ~11 MB
rng = np.random.default_rng(0)
for m in (8, n, 4 * n):
    (tmp/f'img{m}').mkdir()
    for i in range(m): Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp/f'img{m}/{i:05d}.png')
def peak_kb(m):
    open('/proc/self/clear_refs', 'w').write('5')          # reset VmHWM to the current resident size
    r = hs.build_index(tmp/f'img{m}', tmp/'model', tmp/f'idx{m}', shard_size=shard, progress=False)
    assert r['indexed'] == m
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))
peak_kb(8)                                                  # warm-up: imports, first allocations
toks = sum(np.load(tmp/f'idx8/tokens_L{l}.npy').nbytes for l in range(3)) // 8
dim = np.load(tmp/'idx8/pooled.npy').shape[1]
print(json.dumps(dict(small=peak_kb(n), large=peak_kb(4 * n), image_bytes=toks, dim=dim)))
'''
    if not Path('/proc/self/clear_refs').exists(): pytest.skip('needs Linux /proc/self/clear_refs to reset the peak memory')
    n, shard = 256, 128
    r = json.loads(run(sys.executable, '-c', script, tmp_path, n, shard).stdout.splitlines()[-1])
    shard_kb, faiss_kb = shard * r['image_bytes'] / 1024, 3 * 4 * n * r['dim'] * 4 / 1024
    grew = r['large'] - r['small']
    assert grew < shard_kb + faiss_kb, (f"peak memory grew by {grew / 1024:.0f} MB from {n} to {4 * n} images; allowed: one shard "
                                       f"({shard_kb / 1024:.0f} MB) + the FAISS vectors ({faiss_kb / 1024:.0f} MB)")

def test_first_stage_index_by_collection_size():
    "Exact inner product up to FLAT_MAX images (the measured choice in 08_search), HNSW beyond, both scoring by inner product."
    import faiss
    small, large = hs.first_stage_index(8, hs.FLAT_MAX), hs.first_stage_index(8, hs.FLAT_MAX + 1)
    assert isinstance(small, faiss.IndexFlatIP) and isinstance(large, faiss.IndexHNSWFlat)
    assert large.metric_type == faiss.METRIC_INNER_PRODUCT

