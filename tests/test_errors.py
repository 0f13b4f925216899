"Bad input and faults, each as a user meets it (mostly through `hat-nb`): the message, the exit code, and good data left alone."
import json, math, os, shutil, sys
from dataclasses import asdict
from pathlib import Path
import pytest, torch, yaml
from conftest import ROOT, cli, run
from hat_nb.data import make_fixture
from hat_nb.config import tiny_config
from hat_nb.model import HATModel, save_pretrained

BIN = Path(sys.executable).parent
HAT = BIN/'hat-nb'
TINY = [a for k, v in asdict(tiny_config()).items() for a in ('--set', f'model.{k}={json.dumps(v)}')]
QUICK = ['--set', 'epochs=1', '--set', 'max_steps_per_epoch=1', '--set', 'batch_size=4', '--set', 'freeze_txt_epochs=0']

def train_cli(data, out, *extra, **kw):
    "`hat-nb train` of the tiny model in a process of its own (for what needs one: a lock, a signal, a file-size limit, its exit)."
    return run(HAT, 'train', '--data', data, '--out', out, *TINY, *QUICK, *extra, check=False, **kw)

def train_here(data, out, *extra):
    "The same command in this process: for what a training run says and leaves behind."
    return cli('train', '--data', data, '--out', out, *TINY, *QUICK, *extra)

def digest(d):
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(Path(d).rglob('*')) if p.is_file()}

@pytest.fixture(scope='session')   # (session: the slow-first order splits a module's tests)
def data(tmp_path_factory):
    return make_fixture(tmp_path_factory.mktemp('data')/'flickr', 'flickr', n=12)

@pytest.fixture(scope='session')   # (session: the slow-first order splits a module's tests)
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp('run')/'m'
    r = train_here(data, out, '--set', 'epochs=2')
    assert r.returncode == 0, r.stderr[-2000:]
    return out

@pytest.mark.slow
def test_second_run_into_same_dir_refused_and_stale_lock_taken_over(data, trained, tmp_path):
    from hat_nb.runs import run_lock
    before = digest(trained)
    with run_lock(trained):                                  # another run (this process) holds the directory
        r = train_cli(data, trained, '--set', 'epochs=3')
    assert r.returncode == 2 and f"{trained} is in use by another run (pid {os.getpid()})" in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and digest(trained) == before
    out = tmp_path/'stale'; out.mkdir()
    (out/'.lock').write_text('999999')                       # left by a run that was killed: no process holds it
    r = train_cli(data, out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'taking over the lock of a run that ended (pid 999999)' in r.stdout and (out/'best/model.safetensors').is_file()

def test_both_checkpoints_truncated_then_resume_from(data, trained, tmp_path):
    out = shutil.copytree(trained, tmp_path/'m')
    (out/'prev.pt').write_bytes((out/'prev.pt').read_bytes()[:3000])
    good_last = (out/'last.pt').read_bytes()
    (out/'last.pt').write_bytes(good_last[:3000])
    before = digest(out)
    r = train_here(data, out, '--set', 'epochs=3')
    assert r.returncode == 2 and 'last.pt: truncated or corrupt checkpoint' in r.stderr and 'prev.pt is damaged too' in r.stderr, r.stderr
    assert 'is intact' not in r.stderr and digest(out) == before
    (tmp_path/'keep.pt').write_bytes(good_last)               # a good copy elsewhere: --resume-from takes it
    r = train_here(data, out, '--set', 'epochs=3', '--resume-from', tmp_path/'keep.pt')
    assert r.returncode == 0 and 'resumed from' in r.stdout, r.stderr[-2000:]
    r = train_here(data, out, '--resume-from', tmp_path/'nope.pt')
    assert r.returncode == 2 and 'nope.pt: no such checkpoint' in r.stderr

@pytest.mark.parametrize('setting,msg', [('epochs=-1', 'TrainConfig.epochs must be >= 1, got -1'),
                                         ('batch_size=0', 'TrainConfig.batch_size must be >= 1, got 0'),
                                         ('lr=abc', "TrainConfig.lr must be float, got str 'abc'"),
                                         ('model.embed_dim=0', 'HATConfig.embed_dim must be >= 1, got 0')])
def test_bad_settings_named(data, tmp_path, setting, msg):
    r = train_cli(data, tmp_path/'m', '--set', setting)
    assert r.returncode == 2 and msg in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path/'m').exists()

def test_unwritable_out_dir(data, tmp_path):
    if os.geteuid() == 0: out = Path('/sys/hat_nb_out')            # root writes anywhere; sysfs refuses everyone
    else:
        (tmp_path/'ro').mkdir(); (tmp_path/'ro').chmod(0o555); out = tmp_path/'ro/m'
    r = train_here(data, out)
    assert r.returncode == 2 and f'cannot write to {out}' in r.stderr and 'Traceback' not in r.stderr, r.stderr

def test_missing_images_found_before_training(data, tmp_path):
    d = shutil.copytree(data, tmp_path/'d')
    (d/'images/img1.png').unlink(); (d/'images/img4.png').unlink()
    r = train_here(d, tmp_path/'m')
    assert r.returncode == 2 and 'img1.png: image file missing' in r.stderr and 'img4.png: image file missing' in r.stderr, r.stderr
    assert not (tmp_path/'m/last.pt').exists()

def test_check_images_is_a_file(data, tmp_path):
    d = tmp_path/'d'; d.mkdir(); shutil.copy(next(data.glob('dataset_*.json')), d); (d/'images').write_text('oops')
    r = run(HAT, 'check', d, check=False)
    assert r.returncode == 1 and 'images: is a file; expected the images directory' in r.stdout, r.stdout

def test_edited_config_json_named(data, trained, tmp_path):
    m = shutil.copytree(trained/'best', tmp_path/'best')
    cfg = json.loads((m/'config.json').read_text())
    (m/'config.json').write_text(json.dumps(cfg | dict(embed_dim=256)))
    weights = (m/'model.safetensors').read_bytes()
    r = cli('index', data/'images', '--model', m, '--out', tmp_path/'idx')
    assert r.returncode == 2 and f"{m/'config.json'} does not match {m/'model.safetensors'} (embed_dim 256 vs 32)" in r.stderr, r.stderr
    (m/'config.json').write_text(json.dumps(cfg | dict(embed_dimm=256)))
    r = cli('index', data/'images', '--model', m, '--out', tmp_path/'idx')
    assert r.returncode == 2 and f"{m/'config.json'}: unknown HATConfig key(s) ['embed_dimm']" in r.stderr, r.stderr
    assert (m/'model.safetensors').read_bytes() == weights

@pytest.fixture(scope='session')   # (session: the slow-first order splits a module's tests)
def index(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('idx')
    torch.manual_seed(0)
    model = save_pretrained(HATModel(tiny_config()).eval(), tmp/'model')
    imgs = make_fixture(tmp/'data', 'flickr', n=6)/'images'
    assert cli('index', imgs, '--model', model, '--out', tmp/'idx').returncode == 0
    return tmp, model, imgs

def test_search_paths_usable_from_anywhere_and_deleted_files_flagged(index, tmp_path):
    tmp, model, imgs = index
    hits = json.loads(cli('search', tmp/'idx', 'image number 2', '-k', '6', '--json', cwd=tmp_path).stdout)
    assert len(hits) == 6 and all(Path(h['path']).is_absolute() and Path(h['path']).is_file() for h in hits)
    gone = imgs/'img3.png'; keep = gone.read_bytes(); gone.unlink()
    try:
        r = cli('search', tmp/'idx', 'image number 2', '-k', '6', cwd=tmp_path)
        assert f'{gone}   (missing: file deleted or moved)' in r.stdout and '1 result(s) no longer exist on disk' in r.stderr, r
        r = cli('index', imgs, '--model', model, '--out', tmp/'idx')             # update: the deleted file is dropped, nothing re-encoded
        assert 'indexed 5 image(s)' in r.stdout and '0 encoded, 5 unchanged, 1 removed' in r.stdout, r.stdout
        assert str(gone) not in cli('search', tmp/'idx', 'image number 2', '-k', '6').stdout
    finally:
        gone.write_bytes(keep)
    r = cli('index', imgs, '--model', model, '--out', tmp/'idx')
    assert '1 encoded, 5 unchanged, 0 removed' in r.stdout, r.stdout

@pytest.mark.parametrize('args,msg', [(['-k', '-1'], 'argument -k: expected a positive integer, got -1'),
                                      (['-k', 'x'], "argument -k: expected a positive integer, got 'x'"),
                                      (['--prefilter', '-3'], 'argument --prefilter: expected an integer >= 0, got -3')])
def test_search_bad_arguments(index, args, msg):
    tmp, _, _ = index
    r = cli('search', tmp/'idx', 'a dog', *args)
    assert r.returncode == 2 and msg in r.stderr and 'Traceback' not in r.stderr, r.stderr

def test_search_empty_query(index):
    tmp, _, _ = index
    for q in ('', '   '):
        r = cli('search', tmp/'idx', q)
        assert r.returncode == 2 and 'empty query' in r.stderr and 'Traceback' not in r.stderr, r.stderr

def test_corrupt_faiss_index(index, tmp_path):
    tmp, _, _ = index
    idx = shutil.copytree(tmp/'idx', tmp_path/'idx')
    (idx/'index.faiss').write_bytes(b'\x00garbage')
    r = cli('search', idx, 'a dog')
    assert r.returncode == 2 and f"{idx/'index.faiss'}: unreadable FAISS index" in r.stderr and 'hat-nb index' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr

def test_params_override_value_checked_before_stage(tmp_path):
    p = yaml.safe_load((ROOT/'params.yaml').read_text())
    p['train'].update(overrides=dict(lr='abc'))
    f = tmp_path/'params.yaml'; f.write_text(yaml.safe_dump(p))
    r = run(HAT, 'stage', 'train', 'emoji', '--params', f, check=False)
    assert r.returncode == 2 and "train.overrides.lr: TrainConfig.lr must be float, got str 'abc'" in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr

def test_more_processes_than_gpus_refused(monkeypatch):
    "torchrun with 2 processes per node on a 1-GPU machine: a clear error before any process group is joined."
    import hat_nb.train as ht
    from hat_nb.config import recipe
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setenv('WORLD_SIZE', '2'); monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    _, tc = recipe('demo')
    with pytest.raises(ValueError, match=r'2 processes on this machine but 1 GPU\(s\).*--nproc_per_node 1.*device=cpu'):
        ht._init_distributed(tc)
    assert not torch.distributed.is_initialized()

def test_several_processes_on_one_named_gpu_refused(monkeypatch):
    "`device=cuda:1` with 2 processes (train) or nproc=2 (evaluate_dir): one line saying each process needs its own GPU, before any process starts or group is joined."
    import hat_nb.train as ht
    from hat_nb.config import recipe
    from hat_nb.evaluate import evaluate_dir
    monkeypatch.setenv('WORLD_SIZE', '2'); monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    _, tc = recipe('demo', device='cuda:1')
    with pytest.raises(ValueError, match=r"device='cuda:1' names one GPU, but 2 processes were started.*device=cuda"):
        ht._init_distributed(tc)
    assert not torch.distributed.is_initialized()
    with pytest.raises(ValueError, match=r"device='cuda:1' names one GPU, but nproc=2 processes"):
        evaluate_dir('models/none', 'data/none', nproc=2, device='cuda:1')

def test_diverging_lr_stops_without_saving_nan(data, tmp_path):
    "`--set lr=1e30` (YAML 1.1 reads it as text; it is taken as the number): the loss diverges, the run stops with exit 2 and saves nothing non-finite."
    out = tmp_path/'m'
    r = train_here(data, out, '--set', 'lr=1e30', '--set', 'max_steps_per_epoch=3', '--set', 'optimizer=adam', '--set', 'grad_clip=null')
    assert r.returncode == 2 and 'training diverged in epoch 1' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert not (out/'best').exists() and not (out/'last.pt').exists()
    cfg = json.loads((out/'train_config.json').read_text())
    assert cfg['train']['lr'] == 1e30, cfg['train']

def test_nan_scores_refused_in_evaluation():
    from hat_nb.evaluate import recall_metrics
    sims = torch.eye(4); sims[2, 1] = float('nan')
    with pytest.raises(ValueError, match='1 of 16 scores are NaN or inf'): recall_metrics(sims, [0, 1, 2, 3])

def test_cuda_device_without_cuda(data, tmp_path):
    if torch.cuda.is_available(): pytest.skip('CUDA is available here')
    r = train_here(data, tmp_path/'m', '--set', 'device=cuda')
    assert r.returncode == 2 and "device='cuda' but no CUDA device is visible" in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]

@pytest.mark.slow
def test_ctrl_c_writes_a_checkpoint_and_resumes(data, tmp_path):
    "Ctrl-C (SIGINT) during training: one line, exit 130, a checkpoint at the step reached; the same command continues from it."
    import signal, subprocess, time
    out = tmp_path/'m'
    args = [str(HAT), 'train', '--data', str(data), '--out', str(out), *TINY, '--set', 'epochs=40', '--set', 'batch_size=4',
            '--set', 'freeze_txt_epochs=0', '--set', 'log_every=1', '--set', 'ckpt_every_minutes=60']
    p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not ((out/'log.jsonl').is_file() and '"kind": "step"' in (out/'log.jsonl').read_text()):
        assert p.poll() is None and time.time() - t0 < 300, p.communicate()[1][-2000:]
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130 and 'interrupted: checkpoint written at epoch' in err and 'Traceback' not in err, err[-2000:]
    from hat_nb.runs import load_checkpoint
    s = load_checkpoint(out/'last.pt')
    assert (s['epoch'], s['step']) > (0, 0) and s['epoch'] < 40
    r = run(*args[:-4], '--set', f"epochs={s['epoch'] + 1}", check=False)     # the same run, shortened: it continues
    assert r.returncode == 0, r.stderr[-2000:]
    assert load_checkpoint(out/'last.pt')['epoch'] == s['epoch'] + 1

def _bad_images(d):
    "A 90 Mpx image (11 KB on disk), a JPEG cut short, and images that decode wrong without care (16-bit grey, float TIFF)."
    import numpy as np
    from PIL import Image
    Image.new('1', (10000, 9000)).save(d/'huge.png')
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d/'cut.jpg')
    (d/'cut.jpg').write_bytes((d/'cut.jpg').read_bytes()[:1500])
    Image.fromarray(np.arange(256, dtype=np.uint16)[None].repeat(8, 0) * 257).save(d/'ramp16.png')
    Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32)[None].repeat(8, 0)).save(d/'ramp.tif')

def test_check_finds_what_training_would_fail_on(data, tmp_path):
    "`check` decodes every image in full: a truncated JPEG and an oversized image are reported by name; 16-bit and float images pass."
    d = shutil.copytree(data, tmp_path/'d')
    _bad_images(d/'images')
    meta = json.loads(next(d.glob('dataset_*.json')).read_text())
    for im, name in zip(meta['images'], ('huge.png', 'cut.jpg', 'ramp16.png', 'ramp.tif')): im['filename'] = name
    next(d.glob('dataset_*.json')).write_text(json.dumps(meta))
    r = run(HAT, 'check', d, check=False)
    assert r.returncode == 1 and f"{d/'images/huge.png'}: image is 10000x9000 (90 Mpx), over the 89 Mpx limit" in r.stdout, r.stdout
    assert f"{d/'images/cut.jpg'}: unreadable image (image file is truncated" in r.stdout and '2 problem(s)' in r.stdout, r.stdout
    assert 'Traceback' not in r.stderr and 'DecompressionBomb' not in r.stderr, r.stderr

@pytest.mark.slow
def test_index_skips_oversized_and_truncated_images_by_name(index, tmp_path):
    "`hat-nb index` gets past a decompression bomb and a cut JPEG (named in its output) and indexes the rest; a re-run too."
    from PIL import Image
    _, model, imgs = index
    d = shutil.copytree(imgs, tmp_path/'imgs')
    _bad_images(d)
    Image.new('1', (20000, 20000)).save(d/'bomb.png')                  # over PIL's hard limit (2 x 89 Mpx): refused when opened
    for index in (lambda: run(HAT, 'index', d, '--model', model, '--out', tmp_path/'idx', check=False),    # a process: PIL's warnings seen
                  lambda: cli('index', d, '--model', model, '--out', tmp_path/'idx')):                     # the re-run
        r = index()
        assert r.returncode == 0 and 'indexed 8 image(s)' in r.stdout, (r.stdout, r.stderr[-2000:])
        for f in ('huge.png', 'cut.jpg', 'bomb.png'): assert str(d/f) in r.stdout + r.stderr, (f, r.stdout, r.stderr)
        assert 'Traceback' not in r.stderr and 'DecompressionBombWarning' not in r.stderr, r.stderr

def test_build_emoji_without_the_package_registry(tmp_path):
    "npm cannot reach its registry: one message with npm's reason and what to do, exit 2, nothing created."
    env = dict(os.environ, HAT_NB_CACHE=str(tmp_path/'cache'), npm_config_registry='http://127.0.0.1:9/',
               npm_config_cache=str(tmp_path/'npm'), npm_config_fetch_retries='0')
    r = run(HAT, 'build-emoji', tmp_path/'emoji', check=False, env=env, timeout=300)
    assert r.returncode == 2 and "`npm pack emoji-datasource-google@16.0.0` failed (exit 1): " in r.stderr, r.stderr
    assert 'ECONNREFUSED' in r.stderr and "npm's package registry once" in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path/'emoji').exists()

def test_continue_a_cosine_run_with_more_epochs(data, tmp_path):
    "A finished 2-epoch cosine run continued with --set epochs=4: the new epochs follow a 4-epoch cosine (not lr 0 then rising)."
    out = tmp_path/'m'
    assert train_here(data, out, '--set', 'epochs=2').returncode == 0
    log = (out/'log.jsonl').read_text()
    r = train_here(data, out, '--set', 'epochs=2')                        # the same run again: finished, says so
    said = [l for l in r.stdout.splitlines() if not l.startswith('model.txt_model=none')]   # (the tiny test model's own text tower)
    assert r.returncode == 0 and said == [f'{out}: finished, 2 of 2 epochs trained ({out}/last.pt); nothing left to do '
                                          '(--restart trains it again)'], r.stdout
    assert (out/'log.jsonl').read_text() == log
    r = train_here(data, out, '--set', 'epochs=4')
    assert r.returncode == 0 and 'epochs 2 -> 4 with a cosine schedule: from epoch 3' in r.stdout, (r.stdout, r.stderr[-2000:])
    steps = [json.loads(l) for l in (out/'log.jsonl').read_text().splitlines() if json.loads(l)['kind'] == 'step']
    lr0 = json.loads((out/'train_config.json').read_text())['train']['lr']
    lrs = {s['epoch']: s['lr'] for s in steps}                              # epochs counted from 1
    assert sorted(lrs) == [1, 2, 3, 4] and lrs[2] == pytest.approx(lr0 / 2, rel=1e-9), lrs      # the first run: a 2-epoch cosine
    assert [lrs[e + 1] for e in (2, 3)] == pytest.approx([lr0 * (1 + math.cos(math.pi * e / 4)) / 2 for e in (2, 3)], rel=1e-9), lrs
    epochs = {e['epoch']: e['lr'] for e in map(json.loads, (out/'log.jsonl').read_text().splitlines()) if e['kind'] == 'epoch'}
    assert epochs == lrs, (epochs, lrs)                                     # an epoch's record: the lr its steps used

@pytest.mark.slow
def test_an_unexpected_error_in_training_ends_without_shutdown_noise(data, tmp_path):
    "An error nothing catches still ends with its own traceback only: DVCLive's git handles are closed (no dulwich 'Exception ignored')."
    script = tmp_path/'boom.py'
    script.write_text("import sys; sys.path.insert(0, 'tests')\nimport hat_nb.train as T\nfrom train_tiny import tiny_recipe\n"
                      "def boom(*a, **k): raise RuntimeError('boom in an epoch')\nT._train_epoch = boom\n"
                      f"T.train(*tiny_recipe({str(data)!r}, 1), {str(tmp_path/'m')!r}, progress=False)\n")
    r = run(sys.executable, script, check=False)             # from the repository: DVCLive opens it with dulwich
    assert r.returncode == 1 and r.stderr.rstrip().endswith('RuntimeError: boom in an epoch'), r.stderr[-2000:]
    assert 'Exception ignored' not in r.stderr and 'sys.meta_path is None' not in r.stderr, r.stderr[-2000:]

@pytest.mark.slow
def test_unknown_timm_architecture_named(data, tmp_path):
    r = train_cli(data, tmp_path/'m', '--set', 'model.img_model=tiny')
    assert r.returncode == 2 and "HATConfig.img_model must be a timm architecture name (see timm.list_models('swin*')), got 'tiny'" in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr

def _file_size_limit(n):
    "For a child process: files cannot grow past `n` bytes (a full disk, as writes see it: they fail part-way)."
    import resource, signal
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)             # the write fails with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))
    return limit

@pytest.mark.parametrize('limit,files', [(2_000_000, ('best', 'last.pt')),     # the model (5 MB: safetensors fails) or, without a new best, the checkpoint
                                         (8_000_000, ('last.pt',))])           # the checkpoint (16 MB: torch.save fails)
@pytest.mark.slow
def test_disk_full_during_model_or_checkpoint_save(data, trained, tmp_path, limit, files):
    "The disk fills while `best/` or `last.pt` is written: one line naming the file, exit 2, the previous files intact; then it continues."
    out = shutil.copytree(trained, tmp_path/'m')
    keep = {p: (out/p).read_bytes() for p in ('last.pt', 'best/model.safetensors', 'best/config.json')}
    r = train_cli(data, out, '--set', 'epochs=3', preexec_fn=_file_size_limit(limit))
    assert r.returncode == 2 and 'could not be written completely' in r.stderr and 'nothing was replaced; the previous' in r.stderr, r.stderr[-2000:]
    assert any(f"error: {out/f}: could not be written" in r.stderr for f in files) and 'Traceback' not in r.stderr, r.stderr[-2000:]
    failed = next(f for f in files if f"error: {out/f}: could not be written" in r.stderr)
    intact = [p for p in keep if p == 'last.pt' or p.startswith(failed)]              # (a new best/ before the checkpoint is complete, good)
    assert all((out/p).read_bytes() == keep[p] for p in intact), intact
    assert not list(out.glob('.*.pt.*')) and not list(out.glob('.best.*')), sorted(out.iterdir())       # no partial files left
    r = train_here(data, out, '--set', 'epochs=3')               # space again: the same command continues
    assert r.returncode == 0, r.stderr[-2000:]

_img, _txt, _mask = torch.randn(2, 5, 8), torch.randn(3, 4, 8), torch.ones(3, 4, dtype=torch.bool)

@pytest.mark.parametrize('call,err,msg', [
    (lambda S: S(_img.double(), _txt, _mask), TypeError, 'img is torch.float64 but txt is torch.float32: cast one'),
    (lambda S: S(_img.long(), _txt.long(), _mask), TypeError, 'img must be a floating-point tensor, got torch.int64'),
    (lambda S: S(_img.tolist(), _txt, _mask), TypeError, 'img must be a torch.Tensor, got list'),
    (lambda S: S(_img, _txt, _mask.to('meta')), ValueError, 'img, txt and txt_mask must be on one device, got cpu, cpu and meta'),
    (lambda S: S(_img[:, :0], _txt, _mask), ValueError, 'img has no tokens or no width: shape (2, 0, 8)'),
    (lambda S: S(_img, _txt, _mask.float()), TypeError, 'txt_mask must be a bool tensor')])
def test_scan_scores_names_the_bad_argument(call, err, msg):
    from hat_nb.align import scan_scores
    with pytest.raises(err, match=msg.replace('(', r'\(').replace(')', r'\)')): call(scan_scores)

def test_empty_and_mismatched_inputs_of_the_api():
    "No images or no captions: an empty score matrix; ranking and losses name what is wrong instead of failing inside torch."
    from hat_nb.align import scan_scores
    from hat_nb.evaluate import recall_metrics
    from hat_nb.loss import infonce_loss, vsepp_loss
    assert scan_scores(_img[:0], _txt, _mask).shape == (0, 3) and scan_scores(_img, _txt[:0], _mask[:0]).shape == (2, 0)
    with pytest.raises(ValueError, match=r'sims is empty \(shape \(0, 0\)\)'): recall_metrics(torch.zeros(0, 0), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r'one integer image index per caption \(4\)'): recall_metrics(torch.zeros(3, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match='S is empty'): vsepp_loss(torch.zeros(0, 0))
    with pytest.raises(TypeError, match='S must be a floating-point tensor, got torch.int64'): infonce_loss(torch.zeros(2, 2, dtype=torch.long))
    assert recall_metrics([[1.0, 0.0], [0.0, 1.0]], [0, 1])['rsum'] == 600.0          # plain lists are fine

def test_resume_with_other_settings_refused(data, trained, tmp_path):
    "A run directory is one run: resuming it with another lr, batch size, model level or training data is refused, naming each difference."
    out = shutil.copytree(trained, tmp_path/'m')
    before = digest(out)
    r = train_here(data, out, '--set', 'epochs=3', '--set', 'lr=0.01', '--set', 'model.img_levels=[1,3,4]')
    assert r.returncode == 2 and f"{out/'last.pt'} was made with other settings (" in r.stderr, r.stderr[-2000:]
    assert "lr 0.0005 -> 0.01" in r.stderr and "model.img_levels [2, 3, 4] -> [1, 3, 4]" in r.stderr and '--restart' in r.stderr, r.stderr[-2000:]
    assert 'epochs' not in r.stderr.split('other settings')[1] and 'Traceback' not in r.stderr and digest(out) == before
    d = shutil.copytree(data, tmp_path/'d')                             # the same files, one caption edited
    f = next(d.glob('dataset_*.json')); meta = json.loads(f.read_text())
    next(i for i in meta['images'] if i['split'] == 'train')['sentences'][0]['raw'] = 'an edited caption'
    f.write_text(json.dumps(meta))
    r = train_here(d, out, '--set', 'epochs=3')
    assert r.returncode == 2 and 'the training data (files or captions) changed' in r.stderr and digest(out) == before, r.stderr[-2000:]
    assert train_here(data, out, '--set', 'epochs=3', '--set', 'lr=0.01', '--restart').returncode == 0  # the explicit way to start over

def test_last_bad_inputs_answer_in_one_line(data, trained, index, tmp_path):
    """Levels out of order, a model's weights given as a checkpoint, a caption file that is not text, an empty split: one
    line naming the value or file, exit 2 (API: a ValueError naming the split), nothing written."""
    r = train_here(data, tmp_path/'a', '--set', 'model.img_levels=[4,2,3]')
    assert r.returncode == 2 and 'HATConfig.img_levels must be increasing layer numbers' in r.stderr and 'got [4, 2, 3]' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and not (tmp_path/'a').exists()
    weights = trained/'best/model.safetensors'
    r = train_here(data, tmp_path/'b', '--resume-from', weights)
    assert r.returncode == 2 and f"{weights}: not a training checkpoint" in r.stderr and 'last.pt' in r.stderr, r.stderr[-2000:]
    (tmp_path/'caps.bin').write_bytes(b'\xef\xbb\xbfok\n\xff\xfe\x00binary')
    r = cli('search-text', data/'images/img0.png', '--captions', tmp_path/'caps.bin', '--model', trained/'best')
    assert r.returncode == 2 and f"{tmp_path/'caps.bin'}: not a UTF-8 text file" in r.stderr, r.stderr
    from hat_nb.evaluate import evaluate, evaluate_dir
    from hat_nb.model import from_pretrained, load_tokenizer
    model = from_pretrained(trained/'best')
    with pytest.raises(ValueError, match='recs is empty'): evaluate(model, [], load_tokenizer(model.cfg))
    with pytest.raises(ValueError, match="split 'restval' has no images"): evaluate_dir(trained/'best', data, 'restval')

def test_a_closed_pipe_ends_quietly(index):
    "`hat-nb search ... | head -1`: the reader gone before the results are printed ends the command as Unix tools end, no traceback."
    import subprocess
    tmp, model, imgs = index
    p = subprocess.Popen([HAT, 'search', tmp/'idx', 'image number 1', '--json'], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()                                        # the reader goes away before anything is written
    err = p.stderr.read().decode(); p.stderr.close()
    assert p.wait() == 141 and 'Traceback' not in err and 'BrokenPipe' not in err, err
