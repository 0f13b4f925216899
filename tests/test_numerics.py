"Pinned CPU numerics: the same short training gives byte-identical weights whatever instruction set, thread count and CPU vendor\n(Intel, AMD: run under QEMU) the caller has, and differs without the pinning."
import hashlib, os, shutil, subprocess, sys
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

def _train_all(data, tmp, envs: dict, cpus: dict | None = None) -> dict:
    "Weights hash of one short training per environment (two at a time), run natively or as `cpus[name]` under QEMU."
    procs, out = {}, {}
    for name, env in envs.items():
        emulate = ['qemu-x86_64', '-cpu', cpus[name]] if cpus and cpus.get(name) else []
        procs[name] = subprocess.Popen([*emulate, sys.executable, str(ROOT/'tests/train_tiny.py'), str(data), str(tmp/name), '1'], cwd=ROOT, env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if len(procs) % 2 == 0: [p.wait(timeout=900) for p in procs.values()]
    for name, p in procs.items():
        p.wait(timeout=900); assert p.returncode == 0, p.stdout.read()[-3000:]
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

# Other CPUs, emulated: an AMD Zen 2 and an Intel without AVX-512. MKL picks its code by the CPU's vendor string, so
# a vendor difference shows here as on real machines (hat_nb.pipeline: "Pinned CPU numerics").
OTHER_CPUS = {'amd-epyc-rome': 'EPYC-Rome-v1', 'intel-haswell': 'Haswell-v4'}
QEMU = shutil.which('qemu-x86_64')

@pytest.mark.skipif(os.uname().machine != 'x86_64', reason='the emulated CPUs are x86-64: run on an x86-64 machine')
@pytest.mark.skipif(not QEMU, reason="needs qemu-x86_64 (Debian's qemu-user; tools/setup.sh installs it where apt-get runs as root)")
def test_pinned_numerics_agree_on_amd_and_intel(tmp_path):
    data = make_fixture(tmp_path/'data', 'flickr', n=24)
    env = {k: v for k, v in os.environ.items() if k not in cpu_numerics_env()}
    env = {**env, 'CUDA_VISIBLE_DEVICES': '', **cpu_numerics_env('pinned')}
    runs = {**OTHER_CPUS, 'native': None}                               # the two emulated runs side by side, then native
    hashes = _train_all(data, tmp_path, dict.fromkeys(runs, env), cpus=runs)
    assert len(set(hashes.values())) == 1, hashes
