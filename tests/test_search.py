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
    tmp, model, imgs = setup
    out = run(HAT, 'index', imgs, '--model', model, '--out', tmp/'idx').stdout
    assert 'indexed 9 image(s)' in out and 'skipped 1 non-image file(s)' in out and 'unreadable image skipped:' in out and 'broken.jpg' in out
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
