import os, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
# Two workers and the processes they start share the cores: OpenMP threads that spin while they wait for work take the CPU
# from the other worker. Waiting passively changes no result (measured: test_train + test_numerics 223 s -> 154 s).
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
# Tests that compare numbers run with the pipeline's pinned CPU numerics (set before torch starts), as the stages do.
from hat_nb.pipeline import cpu_numerics_env
os.environ.update(cpu_numerics_env('pinned'))

def pytest_collection_modifyitems(config, items):
    "GPU tests skipped without CUDA; the slow tests first, so that two workers (pytest-xdist) start them early and end together."
    import torch
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason='needs a CUDA device')
        for it in items:
            if 'gpu' in it.keywords: it.add_marker(skip)
    items.sort(key=lambda it: 'slow' not in it.keywords)         # stable: file order within each tier

@pytest.fixture(scope='session')
def emoji_dir():
    "The emoji demo dataset (built by tools/setup.sh; built here if missing)."
    d = ROOT/'data/emoji'
    if not (d/'dataset_emoji.json').is_file():
        from hat_nb.emoji import build_emoji
        build_emoji(d, progress=False)
    return d

def run(*args, cwd=ROOT, check=True, **kw):
    r = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, **kw)
    if check and r.returncode: raise AssertionError(f"{args} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r

def cli(*args, cwd=None):
    """`hat-nb ARGS` in this process, for tests about what a command says rather than about a process (the same `main`, the
    same exit code; an exception it does not handle fails the test): an object with returncode, stdout and stderr."""
    import contextlib, io
    from types import SimpleNamespace
    from hat_nb.cli import main
    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    try:
        if cwd: os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try: main([str(a) for a in args]); code = 0
            except SystemExit as e: code = e.code
    finally: os.chdir(here)
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())
