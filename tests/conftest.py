import os, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
# Tests that compare numbers run with the pipeline's pinned CPU numerics (set before torch starts), as the stages do.
from hat_nb.pipeline import cpu_numerics_env
os.environ.update(cpu_numerics_env('pinned'))

def pytest_collection_modifyitems(config, items):
    import torch
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason='needs a CUDA device')
        for it in items:
            if 'gpu' in it.keywords: it.add_marker(skip)

@pytest.fixture(scope='session')
def emoji_dir():
    "The emoji demo dataset (built by tools/setup.sh; built here if missing)."
    d = ROOT/'data/emoji'
    if not (d/'dataset_emoji.json').is_file():
        from hat_nb.data import build_emoji
        build_emoji(d, progress=False)
    return d

def run(*args, cwd=ROOT, check=True, **kw):
    r = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, **kw)
    if check and r.returncode: raise AssertionError(f"{args} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r
