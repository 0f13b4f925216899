"""Pinned CPU numerics with another BLAS: torch's matrix products through numpy's OpenBLAS, its Haswell kernels forced
(AVX2 + FMA, the same instructions and results on every x86-64 vendor), against the pinned run's MKL (its vendor-neutral
`COMPATIBLE` branch, SSE2) and native numerics. One run prints one table: the demo's matrix products (ms), training steps
of the demo recipe (s, both towers training), and hashes of the products' results and of the tiny test model's weights
after two training steps, per setting; then whether the OpenBLAS route gives the same hashes with one CPU to run on and,
with --qemu, on the other vendor's CPU emulated.

    python benchmarks/bench_cpu_blas.py            # about 2 minutes on 2 cores
    python benchmarks/bench_cpu_blas.py --qemu     # and the other vendor's CPU under qemu-x86_64

The route is this script's own (`route_matmuls_through_openblas`): torch's CPU kernels of `mm`, `bmm`, `addmm` and
`baddbmm` replaced, in the child process, by numpy's `matmul` (the other matrix products stay on MKL). OpenBLAS's results
depend on its thread count, and it caps the count it reads from the environment at the CPUs the process may use, so the
route sets 2 threads at run time (threadpoolctl), and `OMP_WAIT_POLICY=PASSIVE` stops torch's idle OpenMP threads from
spinning while OpenBLAS's threads work (without it the route is slower than MKL's SSE2 branch on 2 cores).
"""
import argparse, hashlib, json, os, shutil, subprocess, sys, tempfile, time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {  # the demo's products at 64 pairs of ~18 tokens (1152 token rows): the two operands' shapes
    'text FFN up, 1152×384 @ 384×1536': ((1152, 384), (384, 1536)),
    'text FFN down, 1152×1536 @ 1536×384': ((1152, 1536), (1536, 384)),
    'FFN weight gradient, 384×1152 @ 1152×1536': ((384, 1152), (1152, 1536)),
    'alignment, 64 × (49×128 @ 128×18)': ((64, 49, 128), (64, 128, 18)),
}
CAPTIONS = ['grinning face with big eyes', 'red heart', 'thumbs up sign on a light skin tone', 'rocket', 'face with tears of joy',
            'flag of a country in blue white and red stripes', 'cat', 'a smiling sun behind a small white cloud']
HASH_STEPS = 2  # training steps of the tiny model before its weights are hashed


def route_matmuls_through_openblas():
    "Replace torch's CPU `mm`, `bmm`, `addmm`, `baddbmm` by numpy's OpenBLAS for float32/float64 (this process)."
    import warnings
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(2, user_api='blas')

    def mm(a, b):
        if a.dtype in (torch.float32, torch.float64) and b.dtype == a.dtype:
            return torch.from_numpy(np.matmul(a.detach().numpy(), b.detach().numpy()))
        return (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-2)  # other dtypes: not in these runs

    def addmm(c, a, b, *, beta=1, alpha=1):
        r = mm(a, b)
        if alpha != 1:
            r = r.mul_(alpha)
        return r if beta == 0 else r.add_(c, alpha=beta)

    lib = torch.library.Library('aten', 'IMPL', 'CPU')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "overriding a previously registered kernel": the point
        for op, f in (('mm', mm), ('bmm', mm), ('addmm', addmm), ('baddbmm', addmm)):
            lib.impl(op, f)
    return lib  # the override lasts as long as this object


def _digest(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().numpy().tobytes())
    return h.hexdigest()[:12]


def _train_steps(mc, tc, n, images, captions, times=None):
    "`n` training steps of a fresh seeded model of `mc` (recipe `tc`, both towers training) on one batch; its weights."
    import torch
    from hat_nb.data import Collate
    from hat_nb.model import HATModel, load_tokenizer
    from hat_nb.train import loss_fn, make_optimizer, set_frozen
    torch.manual_seed(0)
    model, tok = HATModel(mc), load_tokenizer(mc)
    ids, mask = Collate(tok, mc.max_len).tokenize(captions)
    opt, _ = make_optimizer(model, tc, 66)
    loss = loss_fn(tc)
    model.train()
    set_frozen(model, tc.epochs, tc)  # the last epoch: both towers train
    for _ in range(n):
        t = time.perf_counter()
        img = model.encode_images(images)
        txt, m = model.encode_texts(ids, mask)
        l = loss(model, img, txt, m, torch.arange(len(captions)))
        opt.zero_grad(set_to_none=True)
        l.backward()
        opt.step()
        if times is not None:
            times.append(time.perf_counter() - t)
    return model.state_dict().values()


def child(out, steps, route, hash_only):
    "Times (unless `hash_only`) and hashes of this process's numerics, as JSON in `out`."
    import torch
    lib = route_matmuls_through_openblas() if route else None
    from hat_nb.config import recipe, tiny_config
    got, g = {}, torch.Generator().manual_seed(0)
    operands = {name: (torch.randn(*a, generator=g), torch.randn(*b, generator=g)) for name, (a, b) in SHAPES.items()}
    got['products'] = _digest(a @ b for a, b in operands.values())
    mc, tc = recipe('demo', **{f'model.{k}': v for k, v in asdict(tiny_config()).items()}, batch_size=8)
    images = torch.randn(8, 3, mc.img_size, mc.img_size, generator=g)
    got['tiny training'] = _digest(_train_steps(mc, tc, HASH_STEPS, images, CAPTIONS))
    if not hash_only:
        for name, (a, b) in operands.items():
            a @ b
            t = time.perf_counter()
            for _ in range(10):
                a @ b
            got[name] = (time.perf_counter() - t) / 10 * 1e3
        mc, tc = recipe('demo')
        captions = [CAPTIONS[i % len(CAPTIONS)] for i in range(tc.batch_size)]
        images = torch.randn(tc.batch_size, 3, mc.img_size, mc.img_size, generator=g)
        times = []
        _train_steps(mc, tc, 1 + steps, images, captions, times)
        got['step'] = sum(times[1:]) / steps
    del lib
    Path(out).write_text(json.dumps(got))


def other_cpu() -> str:
    info = Path('/proc/cpuinfo').read_text() if Path('/proc/cpuinfo').is_file() else ''
    return 'EPYC-Rome-v1' if 'GenuineIntel' in info else 'Haswell-v4'


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--steps', type=int, default=5, help='timed training steps per setting (after the first)')
    ap.add_argument('--qemu', action='store_true', help="also hash the OpenBLAS route on the other vendor's CPU, emulated")
    ap.add_argument('--child', nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        out, route, hash_only = a.child
        return child(out, a.steps, route == 'route', hash_only == 'hash')
    import pandas as pd
    from hat_nb.pipeline import CPU_NUMERICS, cpu_numerics_env
    base = {k: v for k, v in os.environ.items() if k not in CPU_NUMERICS} | dict(CUDA_VISIBLE_DEVICES='')
    base |= {k: CPU_NUMERICS[k] for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')}  # the same threads every way
    routed = base | cpu_numerics_env('pinned') | dict(OMP_WAIT_POLICY='PASSIVE')
    settings = {  # name: (environment, route, hash only, command prefix)
        'pinned (MKL COMPATIBLE)': (base | cpu_numerics_env('pinned'), False, False, []),
        'pinned, OpenBLAS Haswell': (routed, True, False, []),
        'native': (base, False, False, []),
        'OpenBLAS Haswell, 1 CPU': (routed, True, True, ['taskset', '-c', '0'] if shutil.which('taskset') else None),
    }
    if a.qemu:
        cpu = other_cpu()
        settings[f'OpenBLAS Haswell, {cpu} (qemu)'] = (routed, True, True, ['qemu-x86_64', '-cpu', cpu])
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (env, route, hash_only, prefix) in settings.items():
            if prefix is None:
                continue
            out = Path(tmp) / 'out.json'
            cmd = [*prefix, sys.executable, __file__, '--steps', str(a.steps), '--child', str(out),
                   'route' if route else 'mkl', 'hash' if hash_only else 'time']
            r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            if r.returncode:
                sys.exit(f'{name} failed:\n{r.stderr[-3000:]}')
            runs[name] = json.loads(out.read_text())
    timed = {n: r for n, r in runs.items() if 'step' in r}
    rows = [dict(part=f'matmul {s} (ms)', **{n: round(r[s], 1) for n, r in timed.items()}) for s in SHAPES]
    rows.append(dict(part='training step, 64 pairs (s)', **{n: round(r['step'], 3) for n, r in timed.items()}))
    rows.append(dict(part="hash: the products' results", **{n: r['products'] for n, r in timed.items()}))
    rows.append(dict(part=f"hash: tiny model's weights after {HASH_STEPS} steps", **{n: r['tiny training'] for n, r in timed.items()}))
    print(f'cpu: {os.cpu_count()} cores, {base["OMP_NUM_THREADS"]} threads; demo recipe, both towers training')
    print(pd.DataFrame(rows).to_string(index=False))
    ref = runs['pinned, OpenBLAS Haswell']
    for n, r in runs.items():
        if n not in timed:
            same = ' and '.join(f'{k} {"the same" if r[k] == ref[k] else "DIFFERENT"}' for k in ('products', 'tiny training'))
            print(f'{n}: hashes {r["products"]}, {r["tiny training"]} ({same})')


if __name__ == '__main__':
    main()
