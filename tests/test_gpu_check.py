"`hat-nb gpu-check`: its small CPU mode end to end (kernels in Triton's interpreter, scoring, a training step, a 2-process gloo DDP step), with the packages a GPU image lacks made unimportable."
import json, os, sys
import pytest, torch
from conftest import cli, run

NOT_ON_GPU_IMAGES = ('faiss', 'dvc', 'dvclive', 'papermill', 'nbdev', 'execnb')

@pytest.mark.slow
def test_gpu_check_cpu_mode_without_pipeline_packages(tmp_path):
    out = tmp_path/'check.json'
    code = (f"import sys; sys.modules.update(dict.fromkeys({NOT_ON_GPU_IMAGES!r})); "          # None in sys.modules: `import x` fails
            f"from hat_nb.cli import main; main(['gpu-check', '--cpu', '--json', {str(out)!r}])")
    r = run(sys.executable, '-c', code, check=False, timeout=600, env={k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'})
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads(out.read_text())['rows']
    assert {r['check'] for r in rows} == {'kernel', 'scoring', 'train step', 'ddp step'}
    kernels = [r for r in rows if r['check'] == 'kernel']
    assert {r['kernel'] for r in kernels} == {'i2t', 't2i', 't2i_chunked'} and {r['dtype'] for r in kernels} == {'bfloat16', 'float16', 'float32'}
    assert all(r['ok'] for r in kernels) and max(r['max_abs_err'] for r in kernels) < 1e-4
    assert all(r['ok'] for r in rows if r['check'] == 'ddp step')
    assert 'kernel' in r.stdout and 'ddp step' in r.stdout                                   # the printed tables

def test_gpu_check_without_a_gpu_says_so():
    if torch.cuda.is_available(): pytest.skip('a GPU is visible')
    r = cli('gpu-check', '--no-scoring')
    assert r.returncode == 2 and 'no CUDA device is visible (use --cpu' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]
