"tools/setup.sh: a failed install stops setup with the installer's message and a non-zero exit (nothing is hidden by the output filter)."
import json, shutil, sys
from pathlib import Path
import pytest
from conftest import ROOT, run

pytestmark = pytest.mark.slow

@pytest.mark.parametrize('installer', ['uv', 'pip'])
def test_setup_fails_loudly_on_a_broken_install(tmp_path, installer):
    for f in ('tools/setup.sh', 'requirements.txt', 'constraints.txt', 'settings.ini', 'setup.py'):
        (tmp_path/f).parent.mkdir(exist_ok=True); shutil.copy(ROOT/f, tmp_path/f)
    with open(tmp_path/'requirements.txt', 'a') as f: f.write('./no-such-package-dir\n')     # unsatisfiable, found before any download
    r = run('bash', 'tools/setup.sh', cwd=tmp_path, check=False, env={'PATH': '/usr/bin:/bin', 'HOME': str(Path.home()), 'PYTHON': sys.executable, 'HAT_NB_INSTALLER': installer}, timeout=600)
    assert r.returncode == 1, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert 'no-such-package-dir' in r.stderr and f'{installer} install -c constraints.txt -r requirements.txt failed' in r.stderr, r.stderr[-2000:]
    assert not (tmp_path/'.venv/.hat_nb-installed').exists() and not (tmp_path/'data').exists()

API = '''import sys
from hat_nb.model import from_pretrained, load_tokenizer
from hat_nb.data import read_karpathy, find_karpathy_json
from hat_nb.evaluate import evaluate
model = from_pretrained(sys.argv[1]); tok = load_tokenizer(model.cfg)
res = evaluate(model, read_karpathy(find_karpathy_json(sys.argv[2]), splits='test'), tok)
print(sorted(res['scoring']))
'''

def test_the_wheel_alone_runs_the_paper_model_at_its_real_size(tmp_path):
    """The built wheel with its `demo` extra, in a fresh venv (packages from the local cache), is the whole library and CLI,
    and takes the road a GPU user walks at the paper's real size (random-init Swin-B and BERT-base at 224 px: 3,136, 784,
    196 and 49 patches, 12 layers of 768): `hat-nb train --recipe paper_f30k` for two steps with its validation (both towers
    frozen in epoch 1, as the recipe has it), `evaluate` from the API, `hat-nb index` and `hat-nb search`, each process
    under 3 GB, the model saved and read back at its real size."""
    import resource
    from hat_nb.data import make_fixture
    if not shutil.which('uv', path=str(ROOT/'.venv/bin')): pytest.skip('needs tools/setup.sh (uv in .venv/bin)')
    uv = str(ROOT/'.venv/bin/uv')
    src = tmp_path/'src'                         # a copy of the tracked files: the build writes build/ and *.egg-info
    files = run('git', 'ls-files', '-z').stdout.split('\0')
    for f in filter(None, files):
        if (ROOT/f).is_file(): (src/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(ROOT/f, src/f)
    run(sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', str(tmp_path/'dist'), str(src), timeout=300)
    wheel, = (tmp_path/'dist').glob('hat_nb-*.whl')
    venv = tmp_path/'venv'
    run(uv, 'venv', '-q', '--python', sys.executable, str(venv), timeout=120)
    run(uv, 'pip', 'install', '-q', '--offline', '--python', str(venv/'bin/python'), '-c', str(ROOT/'constraints.txt'), f'{wheel}[demo]', timeout=600)
    bin_, env = venv/'bin', {'PATH': f"{venv/'bin'}:/usr/bin:/bin", 'HOME': str(Path.home()), 'CUDA_VISIBLE_DEVICES': ''}
    assert not (bin_/'papermill').exists()                                        # no pipeline tools without the extra
    data = make_fixture(tmp_path/'data', 'flickr', n=9, size=64)                 # 3 train, 3 val, 3 test images
    out = tmp_path/'run'
    r = run(str(bin_/'hat-nb'), 'train', '--recipe', 'paper_f30k', '--data', str(data), '--out', str(out), '--set', 'model.img_weights=none',
            '--set', 'model.txt_model=none', '--set', 'epochs=1', '--set', 'max_steps_per_epoch=2', '--set', 'batch_size=4',
            '--set', 'eval_batch_size=4', '--set', 'num_workers=0', cwd=tmp_path, env=env, timeout=600)
    cfg = json.loads((out/'best/config.json').read_text())
    assert (cfg['img_model'], cfg['img_size'], cfg['txt_levels'], cfg['embed_dim']) == ('swin_base_patch4_window7_224', 224, [4, 10, 12], 768), cfg
    size = sum(p.stat().st_size for p in (out/'best').rglob('*') if p.is_file())
    assert size > 700e6, size                                                    # Swin-B + BERT-base in fp32: the real model
    epoch = [json.loads(l) for l in (out/'log.jsonl').read_text().splitlines() if json.loads(l)['kind'] == 'epoch']
    assert len(epoch) == 1 and 0 <= epoch[0]['val_rsum'] <= 600, epoch         # validated on the val split
    r = run(str(bin_/'python'), '-c', API, str(out/'best'), str(data), cwd=tmp_path, env=env, timeout=300)
    assert "'i2t'" in r.stdout, r.stdout + r.stderr[-2000:]
    run(str(bin_/'hat-nb'), 'index', str(data/'images'), '--model', str(out/'best'), '--out', str(tmp_path/'idx'), '--batch-size', '4',
        cwd=tmp_path, env=env, timeout=300)
    r = run(str(bin_/'hat-nb'), 'search', str(tmp_path/'idx'), 'Image number 4 caption 0.', '-k', '3', '--json', cwd=tmp_path, env=env, timeout=300)
    hits = json.loads(r.stdout)
    assert len(hits) == 3 and all(h['path'].endswith('.png') for h in hits), hits
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024         # the largest process this test started
    assert peak < 3e9, f'{peak / 1e9:.2f} GB'
    # the pipeline's stage runner needs the pipeline extra: one line naming it
    r = run(str(bin_/'python'), '-c', 'from hat_nb.config import optional_import; optional_import("papermill")', cwd=tmp_path, env=env, check=False)
    assert r.returncode == 1 and "pip install 'hat_nb[pipeline]'" in r.stderr.splitlines()[-1], r.stderr
