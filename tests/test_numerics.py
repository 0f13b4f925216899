"Pinned CPU numerics: the same short training gives byte-identical weights whatever instruction set, thread count and CPU vendor\n(Intel, AMD: run under QEMU) the caller has, and differs without the pinning."
import os, shutil, subprocess, sys
from pathlib import Path
import pytest
from concurrent.futures import ThreadPoolExecutor
from conftest import ROOT
from hat_nb.data import make_fixture
from hat_nb.pipeline import cpu_numerics_env

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('numerics')]   # one worker trains once for both tests

HASH = ("import hashlib, sys; from hat_nb.runs import load_checkpoint; s = load_checkpoint(sys.argv[1])['model']; h = hashlib.sha256()\n"
        "for k in sorted(s): h.update(k.encode()); h.update(s[k].numpy().tobytes())\nprint(h.hexdigest())")

def capabilities() -> list[str]:
    "ATEN_CPU_CAPABILITY values this CPU can run: default, avx2, avx512."
    flags = set(Path('/proc/cpuinfo').read_text().split()) if Path('/proc/cpuinfo').is_file() else set()
    return ['default'] + (['avx2'] if 'avx2' in flags else []) + (['avx512'] if {'avx512f', 'avx512bw', 'avx512vl', 'avx512dq'} <= flags else [])

def _train(data, out, env, cpu=None) -> str:
    "Weights hash of one short training in `env`, run natively or, with `cpu`, as that CPU under QEMU."
    emulate = ['qemu-x86_64', '-cpu', cpu] if cpu else []
    p = subprocess.run([*emulate, sys.executable, str(ROOT/'tests/train_tiny.py'), str(data), str(out), '1'], cwd=ROOT, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:]
    return subprocess.run([sys.executable, '-c', HASH, str(out/'last.pt')], capture_output=True, text=True, check=True).stdout.strip()

# The other vendor's CPU, emulated: an AMD Zen 2 on an Intel machine, an Intel Haswell on any other. MKL picks its code
# by the CPU's vendor string, so a vendor difference shows here as on real machines (hat_nb.pipeline: "Pinned CPU numerics").
def other_cpu() -> str:
    info = Path('/proc/cpuinfo').read_text() if Path('/proc/cpuinfo').is_file() else ''
    return 'EPYC-Rome-v1' if 'GenuineIntel' in info else 'Haswell-v4'
QEMU = shutil.which('qemu-x86_64') if os.uname().machine == 'x86_64' else None

@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """Weights hash per caller: the pinned runner called from the most different callers (the lowest instruction set
    with 1 thread, the highest with 2, the other vendor's CPU emulated), and two unpinned callers. Two at a time: the
    slow emulated run first, the native runs beside it."""
    tmp = tmp_path_factory.mktemp('numerics')
    data = make_fixture(tmp/'data', 'flickr', n=24)
    base = {k: v for k, v in os.environ.items() if k not in cpu_numerics_env() and k != 'CUDA_VISIBLE_DEVICES'}
    base['CUDA_VISIBLE_DEVICES'] = ''
    caps = capabilities()
    caller = lambda c, t: dict(base, ATEN_CPU_CAPABILITY=c, OMP_NUM_THREADS=str(t))
    runs = {}
    if QEMU: runs['pinned-other-vendor'] = ({**caller(caps[-1], 2), **cpu_numerics_env('pinned')}, other_cpu())
    runs |= {f'pinned-{c}-{t}t': ({**caller(c, t), **cpu_numerics_env('pinned')}, None) for c, t in (('default', 1), (caps[-1], 2))}
    runs |= {f'native-{c}-{t}t': (caller(c, t), None) for c, t in (('default', 1), (caps[-1], 2))}
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(_train, data, tmp/name, env, cpu) for name, (env, cpu) in runs.items()}
    return {name: f.result() for name, f in futures.items()}

@pytest.mark.skipif(os.uname().machine not in ('x86_64', 'AMD64'), reason='instruction-set pinning is for x86-64 CPUs')
def test_pinned_numerics_give_identical_weights(weights):
    pinned = {k: v for k, v in weights.items() if k.startswith('pinned-') and k != 'pinned-other-vendor'}
    assert len(set(pinned.values())) == 1, pinned                        # the runner's pinning wins over the caller's environment
    unpinned = {k: v for k, v in weights.items() if k.startswith('native-')}
    assert len(set(unpinned.values())) > 1, unpinned                     # unpinned: another instruction set or thread count differs

@pytest.mark.skipif(os.uname().machine != 'x86_64', reason='the emulated CPU is x86-64: run on an x86-64 machine')
@pytest.mark.skipif(not QEMU, reason="needs qemu-x86_64 (Debian's qemu-user; tools/setup.sh --tests installs it where apt-get runs as root)")
def test_pinned_numerics_agree_on_amd_and_intel(weights):
    assert weights['pinned-other-vendor'] == weights[f'pinned-{capabilities()[-1]}-2t'], weights
