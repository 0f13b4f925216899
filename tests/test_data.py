"Data layer: the emoji demo build on the real npm data, and bad inputs through the command line."
import hashlib, json, shutil, sys
from pathlib import Path
import pytest
from conftest import run
from hat_nb.data import DatasetError, check, make_fixture, read_karpathy, summarize
from hat_nb.emoji import build_emoji

HAT = Path(sys.executable).parent/'hat-nb'

def tree_digest(d):
    h = hashlib.sha256()
    for p in sorted(Path(d).rglob('*')):
        if p.is_file(): h.update(p.relative_to(d).as_posix().encode()); h.update(p.read_bytes())
    return h.hexdigest()

def test_emoji_counts_and_splits(emoji_dir):
    recs = read_karpathy(emoji_dir/'dataset_emoji.json')
    s = summarize(recs)
    assert {k: (v['images'], v['captions']) for k, v in s.items()} == {'train': (3106, 4276), 'val': (230, 301), 'test': (450, 605)}
    ims = json.loads((emoji_dir/'dataset_emoji.json').read_text())['images']
    bases = {sp: {im['base'] for im in ims if im['split'] == sp} for sp in ('train', 'val', 'test')}
    assert (len(bases['val']), len(bases['test'])) == (120, 250)
    assert not bases['train'] & bases['test'] and not bases['train'] & bases['val'] and not bases['val'] & bases['test']
    caps = {r.filename: r.captions for r in recs}
    assert caps['1f385-1f3fe.png'] == ['father christmas: medium-dark skin tone', 'santa: medium-dark skin tone']
    assert caps['1f600.png'] == ['grinning face', 'grinning']
    assert all(c == c.lower() for cs in caps.values() for c in cs)

def test_emoji_rebuild_is_byte_identical(emoji_dir, tmp_path):
    out = build_emoji(tmp_path/'emoji', progress=False)
    assert tree_digest(out) == tree_digest(emoji_dir)

def test_emoji_bad_tarball_keeps_good_data(emoji_dir, tmp_path):
    good = shutil.copytree(emoji_dir, tmp_path/'emoji')
    before = tree_digest(good)
    bad = tmp_path/'bad.tgz'; bad.write_bytes(b'\x1f\x8b corrupted')
    with pytest.raises(RuntimeError, match='bad.tgz: checksum mismatch'): build_emoji(good, tarball=bad, progress=False)
    assert tree_digest(good) == before

def test_emoji_refuses_foreign_directory(tmp_path):
    (tmp_path/'mine').mkdir(); (tmp_path/'mine/notes.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='not an emoji dataset'): build_emoji(tmp_path/'mine', progress=False)
    assert (tmp_path/'mine/notes.txt').read_text() == 'keep me'

def test_check_cli_reports_every_problem(tmp_path):
    d = make_fixture(tmp_path/'f', 'flickr')
    assert run(HAT, 'check', d).stdout.strip().endswith('OK')
    meta = json.loads((d/'dataset_flickr.json').read_text())
    meta['images'][0]['split'] = 'dev'; meta['images'][1]['sentences'] = []; meta['images'][2]['filename'] = 'img0.png'
    (d/'dataset_flickr.json').write_text(json.dumps(meta)); (d/'images/img4.png').unlink(); (d/'images/img5.png').write_text('x')
    r = run(HAT, 'check', d, check=False)
    assert r.returncode == 1
    for msg in ["images[0] (img0.png): unknown split 'dev'", 'images[1] (img1.png): empty caption list',
                'images[2] (img0.png): duplicate filename', 'img4.png: image file missing', 'img5.png: unreadable image', '5 problem(s)']:
        assert msg in r.stdout, (msg, r.stdout)

@pytest.mark.parametrize('content,msg', [(None, 'expected exactly one dataset_*.json, found none'), ('{not json', 'not valid JSON'),
                                         ('{"imgs": []}', "top-level key 'images' (a list) is missing")])
def test_bad_json(tmp_path, content, msg):
    (tmp_path/'images').mkdir()
    if content is not None: (tmp_path/'dataset_x.json').write_text(content)
    assert any(msg in p for p in check(tmp_path))
    if content is not None:
        with pytest.raises(DatasetError, match='dataset_x.json'): read_karpathy(tmp_path/'dataset_x.json')

def test_unknown_split_requested(tmp_path):
    d = make_fixture(tmp_path/'c', 'coco')
    with pytest.raises(DatasetError, match="unknown split"): read_karpathy(d/'dataset_coco.json', splits='testing')
    assert [r.split for r in read_karpathy(d/'dataset_coco.json', splits='restval')] == ['restval']
