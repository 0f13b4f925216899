"`hat-nb` answers a bad recipe, setting, value or path before it loads a model library: one process runs every refused call."
import json, subprocess, sys, textwrap
from conftest import ROOT, cli

HEAVY = ('torch', 'timm', 'transformers', 'papermill', 'torchvision')

# (arguments, exit code, what stderr says; exit code 1: what stdout says); DATA is a Karpathy-format fixture, BADPARAMS a params.yaml with a typo
REFUSED = [
    (['train', '--recipe', 'nope', '--out', 'OUT'], 2, "unknown recipe 'nope'; choose from"),
    (['recipe', 'paper_f30k', '--set', 'epochs=0'], 2, 'TrainConfig.epochs must be >= 1, got 0'),
    (['train', '--set', 'epoch=3', '--out', 'OUT'], 2, "unknown training setting 'epoch'"),
    (['train', '--set', 'epochs=-1', '--out', 'OUT'], 2, 'TrainConfig.epochs must be >= 1, got -1'),
    (['train', '--set', 'model.embed_dim=0', '--out', 'OUT'], 2, 'HATConfig.embed_dim must be >= 1, got 0'),
    (['train', '--set', 'lr', '--out', 'OUT'], 2, "--set expects key=value, got 'lr'"),
    (['train', '--data', 'no/such/dir', '--out', 'OUT'], 2, 'no/such/dir: directory does not exist'),
    (['train', '--data', 'DATA', '--resume-from', 'nope.pt', '--out', 'OUT'], 2, 'nope.pt: no such checkpoint'),
    (['index', 'no/such/dir', '--model', 'm', '--out', 'IDX'], 2, 'no/such/dir: not a directory'),
    (['index', 'DATA/images', '--model', 'no/model', '--out', 'IDX'], 2, 'no/model/config.json: missing'),
    (['search', 'no/idx', 'a cat'], 2, 'no/idx: not a complete index (no such folder)'),
    (['search-text', 'no.png', '--captions', 'c.txt', '--model', 'm'], 2, 'no.png: image file missing'),
    (['import-official', 'no.ckpt', '--out', 'OUT'], 2, 'no.ckpt: no such checkpoint file'),
    (['import-official', 'DATA/dataset_flickr.json', '--recipe', 'nope', '--out', 'OUT'], 2, "unknown recipe 'nope'"),
    (['train', '--set', 'lr=[1,', '--out', 'OUT'], 2, '--set lr=[1,: the value is not valid YAML'),
    (['check', 'no/such/dir'], 1, ''),
    (['check', 'DATA/images'], 1, 'to get it: `hat-nb get-data flickr30k|coco` (the paper'),
    (['stage', 'train', 'emoji', '--params', 'BADPARAMS'], 2, 'train.overrides.lr: TrainConfig.lr must be float'),
    (['stage', 'train', 'emoji', '--params', 'BADLEVELS'], 2, 'train.levels: levels must be distinct level numbers from 1 to 3'),  # `dvc exp run -S`
    (['stage', 'evaluate', 'emoji', '--params', 'no.yaml'], 2, 'no.yaml: file not found'),
]

SCRIPT = textwrap.dedent('''
    import contextlib, io, json, sys
    from hat_nb.cli import main
    out = []
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(said := io.StringIO()):
            try: main(argv); code = 0
            except SystemExit as e: code = e.code
        out.append(dict(code=code, stderr=err.getvalue(), stdout=said.getvalue(), heavy=sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)))
    print(json.dumps(out))''')

def test_refused_calls_load_no_model_library(tmp_path):
    from hat_nb.data import make_fixture
    data = make_fixture(tmp_path/'data', 'flickr', n=6)
    (tmp_path/'bad.yaml').write_text((ROOT/'params.yaml').read_text().replace('overrides: {}', "overrides: {lr: abc}", 1))
    (tmp_path/'levels.yaml').write_text((ROOT/'params.yaml').read_text().replace('  - 1\n  - 2\n  - 3\n', '  - 0\n', 1))
    subst = dict(DATA=str(data), BADPARAMS=str(tmp_path/'bad.yaml'), BADLEVELS=str(tmp_path/'levels.yaml'), OUT=str(tmp_path/'m'), IDX=str(tmp_path/'idx'))
    argvs = [[subst.get(a.split('/')[0], a.split('/')[0]) + a[len(a.split('/')[0]):] for a in args] for args, _, _ in REFUSED]
    r = subprocess.run([sys.executable, '-c', SCRIPT, json.dumps(argvs), json.dumps(HEAVY)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    for (args, code, msg), got in zip(REFUSED, json.loads(r.stdout)):
        assert got['code'] == code and msg in (got['stderr'] if code == 2 else got['stdout']) and 'Traceback' not in got['stderr'], (args, got)
        assert got['heavy'] == [], (args, got['heavy'])          # nothing of torch, timm, transformers or papermill was imported
    assert not (tmp_path/'m').exists() and not (tmp_path/'idx').exists()

def test_paper_recipe_names_its_weights_or_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    """`hat-nb train --recipe paper_f30k` where weights/ is empty: one line naming the missing tower, `get-weights` and the
    random alternative; random towers asked for explicitly are said on stdout before anything else runs; a damaged weights
    file is one line too."""
    import pytest
    from hat_nb.cli import main
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e: main(['train', '--recipe', 'paper_f30k', '--data', 'd', '--out', 'm'])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count('\n') == 1 and 'model.img_weights: weights/swin_base_patch4_window7_224_22k.safetensors not found' in err \
        and '`hat-nb get-weights`' in err and '--set model.img_weights=none' in err, err
    with pytest.raises(SystemExit) as e:
        main(['train', '--recipe', 'paper_coco', '--set', 'model.img_weights=none', '--set', 'model.txt_model=none', '--data', 'd', '--out', 'm'])
    said = capsys.readouterr()
    assert e.value.code == 2 and 'd: directory does not exist' in said.err, said
    assert said.out.splitlines() == ['model.img_weights=none: the image tower starts from random weights, not weights/swin_base_patch4_window7_224_22k.safetensors',
                                     'model.txt_model=none: the text tower starts from random weights, not weights/bert-base-uncased'], said.out
    from hat_nb.data import make_fixture                                    # a damaged weights file: one line, no traceback
    make_fixture(tmp_path/'d', 'flickr', n=4)
    (tmp_path/'noise.safetensors').write_bytes(bytes(range(256)) * 20)
    with pytest.raises(SystemExit) as e:
        main(['train', '--recipe', 'paper_f30k', '--set', 'model.img_weights=noise.safetensors', '--set', 'model.txt_model=none',
              '--data', 'd', '--out', 'm'])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count('\n') == 1 and 'noise.safetensors: not a readable safetensors file' in err, err

def test_an_error_hat_nb_does_not_know_keeps_its_traceback(monkeypatch):
    "Only known errors become one line: anything else (a bug) propagates with its traceback."
    import pytest
    import hat_nb.cli as C
    def boom(a): raise KeyError('a bug')
    monkeypatch.setattr(C, '_check', boom)
    with pytest.raises(KeyError, match='a bug'): C.main(['check', 'x'])

def test_get_weights_from_the_hub_cache_offline(tmp_path):
    """`hat-nb get-weights` through huggingface_hub with its own settings (a fabricated cache, offline): the towers land where
    the paper recipes name them, each checked against the architecture params.yaml names (here the tiny model), recorded in
    SHA256SUMS; a second run keeps them; a damaged file given with --from is refused before anything is copied; a tower
    missing from the cache is named; an unreachable hub is tried once."""
    import shutil, yaml
    from dataclasses import asdict
    from hat_nb.config import PAPER_WEIGHTS, tiny_config
    from hat_nb.model import make_tower_files
    towers = make_tower_files(tmp_path/'made', tiny_config())
    rev, hub = 'a' * 40, tmp_path/'hub'
    for repo, files in {'timm/swin_base_patch4_window7_224.ms_in22k': {'model.safetensors': towers[0]},
                        'google-bert/bert-base-uncased': {f: towers[1]/f for f in ('config.json', 'vocab.txt', 'tokenizer.json',
                                                                                   'tokenizer_config.json', 'model.safetensors')
                                                          if (towers[1]/f).exists()}}.items():
        r = hub/('models--' + repo.replace('/', '--')); (r/'refs').mkdir(parents=True); (r/'refs/main').write_text(rev)
        (r/'snapshots'/rev).mkdir(parents=True)
        for f, src in files.items(): shutil.copy(src, r/'snapshots'/rev/f)
    params = yaml.safe_load((ROOT/'params.yaml').read_text())              # the paper datasets with the tiny towers
    tiny = {f'model.{k}': list(v) if isinstance(v, tuple) else v for k, v in asdict(tiny_config()).items()
            if k not in ('img_weights', 'txt_model', 'tokenizer')}
    tiny['model.img_kwargs'] = {k: list(v) if isinstance(v, tuple) else v for k, v in tiny['model.img_kwargs'].items()}
    params['catalog']['flickr30k']['overrides'] = tiny
    (tmp_path/'params.yaml').write_text(yaml.safe_dump(params))
    env = dict(__import__('os').environ, HF_HUB_CACHE=str(hub), HF_HUB_OFFLINE='1')
    get = lambda *a: subprocess.run([sys.executable, '-m', 'hat_nb.cli', 'get-weights', *a], cwd=tmp_path, env=env, capture_output=True, text=True)
    (tmp_path/'noise.safetensors').write_bytes(bytes(range(256)) * 20)    # 5,120 bytes that are not a safetensors file
    r = cli('get-weights', '--from', tmp_path/'noise.safetensors', cwd=tmp_path)   # (no hub needed: in this process)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'noise.safetensors: not a readable safetensors file' in r.stderr, r.stderr
    assert not (tmp_path/'weights').exists()                                # nothing copied, nothing recorded
    r = get()
    assert r.returncode == 0, r.stderr
    swin, bert = tmp_path/PAPER_WEIGHTS['img_weights'], tmp_path/PAPER_WEIGHTS['txt_model']
    assert swin.read_bytes() == towers[0].read_bytes() and (bert/'tokenizer.json').is_file()
    sums = (swin.parent/'SHA256SUMS').read_text()
    assert sums.count('\n') == 1 + len(list(bert.iterdir())) and f'  {swin.name}\n' in sums and '  bert-base-uncased/config.json\n' in sums, sums
    r = cli('get-weights', cwd=tmp_path)                                   # both in place: the hub is not asked
    assert r.returncode == 0 and json.loads(r.stdout) == dict.fromkeys(['model.img_weights', 'model.txt_model'], 'already in place'), r.stdout
    shutil.rmtree(bert); shutil.rmtree(hub/'models--google-bert--bert-base-uncased')
    r = get()
    assert r.returncode == 2 and r.stderr.startswith('hat-nb get-weights: error: google-bert/bert-base-uncased: not fetched (') \
        and len(r.stderr.strip().splitlines()) == 1, r.stderr
    import socket, time                                     # the hub unreachable: one try, then the cache, then how to go on
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    env.pop('TRANSFORMERS_OFFLINE', None); env['HF_HUB_OFFLINE'] = '0'; env['HF_ENDPOINT'] = f'http://127.0.0.1:{port}'
    t0 = time.monotonic(); r = get()
    assert r.returncode == 2 and time.monotonic() - t0 < 20 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f'127.0.0.1:{port} unreachable' in r.stderr and 'hat-nb get-weights --from PATH' in r.stderr and 'weights/README.md' in r.stderr, r.stderr

def test_every_option_has_help_with_its_default():
    "`hat-nb CMD -h`: a line for every option and argument, ending with the default where there is one (`train --recipe`: demo)."
    import argparse
    from hat_nb.cli import parser
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    bare = [f'{name} {a.dest}' for name, p in sub.choices.items() for a in p._actions if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not bare, f'options without help: {bare}'
    shown = ' '.join(sub.choices['train'].format_help().split())
    assert '(default: demo)' in shown and 'the recipe to train' in shown, shown
    assert '(default: 10)' in ' '.join(sub.choices['search'].format_help().split())
    assert '(default: False)' not in ''.join(p.format_help() for p in sub.choices.values())

def test_get_data_test_only_refuses_a_copy_that_differs(tmp_path, monkeypatch):
    """`hat-nb get-data flickr30k --test-only`: a hub copy whose sample has a caption no test image of Karpathy's split file
    has is refused in one line naming the sample and the caption, exit 2, nothing laid out; the same copy unaltered is laid
    out (its size then checked against the protocol's)."""
    from huggingface_hub import constants
    from hat_nb.data import make_fixture
    from loopback import hub_test_copy, paper_archives
    fx = make_fixture(tmp_path/'fx', 'flickr')
    zip_ = paper_archives(fx, 'flickr', tmp_path/'have')[0]
    hub = hub_test_copy(tmp_path/'hub', 'clip-benchmark/wds_flickr30k', fx, edit=lambda i, caps: caps[:-1] + ['A dog.'] if i == 1 else caps)
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(hub)); monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', True)
    r = cli('get-data', 'flickr30k', '--test-only', '--from', zip_, '--out', tmp_path/'f30k')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "differs from dataset_flickr30k.json, refused: test/0.tar:s0000001: caption 'A dog.' belongs to no test image" in r.stderr, r.stderr
    assert not (tmp_path/'f30k').exists()
    hub_test_copy(hub, 'clip-benchmark/wds_flickr30k', fx)
    r = cli('get-data', 'flickr30k', '--test-only', '--from', zip_, '--out', tmp_path/'f30k')
    assert r.returncode == 2 and 'test split has 2 images / 5 captions, the protocols need 1,000 / 5,000' in r.stderr, r.stderr
    assert sorted(p.name for p in (tmp_path/'f30k/images').iterdir()) == ['img2.webp', 'img5.webp']
