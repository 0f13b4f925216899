"Pinned CPU numerics: the same short training gives byte-identical weights whatever instruction set and thread count the caller's environment asks for, and differs without the pinning."
import hashlib, os, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT
from hat_nb.data import make_fixture
from hat_nb.pipeline import cpu_numerics_env

pytestmark = pytest.mark.slow

HASH = ("import hashlib, sys; from hat_nb.train import load_checkpoint; s = load_checkpoint(sys.argv[1])['model']; h = hashlib.sha256()\n"
        "for k in sorted(s): h.update(k.encode()); h.update(s[k].numpy().tobytes())\nprint(h.hexdigest())")

def capabilities() -> list[str]:
    "ATEN_CPU_CAPABILITY values this CPU can run: default, avx2, avx512."
    flags = set(Path('/proc/cpuinfo').read_text().split()) if Path('/proc/cpuinfo').is_file() else set()
    return ['default'] + (['avx2'] if 'avx2' in flags else []) + (['avx512'] if {'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'} <= flags else [])

def _train_all(data, tmp, envs: dict) -> dict:
    "Weights hash of one short training per environment (two at a time: each run uses the threads it is told to)."
    procs, out = {}, {}
    for name, env in envs.items():
        procs[name] = subprocess.Popen([sys.executable, str(ROOT/'tests/train_tiny.py'), str(data), str(tmp/name), '1'], cwd=ROOT, env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if len(procs) % 2 == 0: [p.wait(timeout=600) for p in procs.values()]
    for name, p in procs.items():
        p.wait(timeout=600); assert p.returncode == 0, p.stdout.read()[-3000:]
        out[name] = subprocess.run([sys.executable, '-c', HASH, str(tmp/name/'last.pt')], capture_output=True, text=True, check=True).stdout.strip()
    return out

@pytest.mark.skipif(os.uname().machine not in ('x86_64', 'AMD64'), reason='instruction-set pinning is for x86-64 CPUs')
def test_pinned_numerics_give_identical_weights(tmp_path):
    data = make_fixture(tmp_path/'data', 'flickr', n=24)
    base = {k: v for k, v in os.environ.items() if k not in cpu_numerics_env() and k != 'CUDA_VISIBLE_DEVICES'}
    base['CUDA_VISIBLE_DEVICES'] = ''
    caps = capabilities()
    callers = {f'{c}-{t}t': dict(base, ATEN_CPU_CAPABILITY=c, OMP_NUM_THREADS=str(t)) for c in caps for t in (1, 2)}
    # pinned: the most different callers (the lowest instruction set with 1 thread, the highest with 2) end in one environment
    far = {n: callers[n] for n in ('default-1t', f'{caps[-1]}-2t')}
    pinned = _train_all(data, tmp_path, {f'pinned-{n}': {**e, **cpu_numerics_env('pinned')} for n, e in far.items()})
    assert len(set(pinned.values())) == 1, pinned                        # the runner's pinning wins over the caller's environment
    # unpinned: another instruction set, or another thread count, changes the weights
    native = {n: callers[n] for n in (f'{caps[-1]}-2t', f'{caps[-1]}-1t', 'default-2t')}
    unpinned = _train_all(data, tmp_path, {f'native-{n}': e for n, e in native.items()})
    assert len(set(unpinned.values())) > 1, unpinned
