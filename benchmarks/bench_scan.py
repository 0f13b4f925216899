"""Throughput of `scan_scores` per backend (torch, compile, triton) and of the naive per-caption loop, side by side, same inputs.

    python benchmarks/bench_scan.py [--device cpu|cuda] [--n-img 100] [--n-txt 500] [--backend torch,compile,triton] [--json out.json]

Shapes default to one HAT level of the paper at 224 px (R=196 patches, L=32 tokens incl. padding, d=768). Default backends:
torch, compile and triton on CUDA; torch on the CPU (add `compile`, or `triton` with TRITON_INTERPRET=1, to try them there).
"""
import argparse, json, platform, time
import torch
from hat_nb.align import scan_scores, scan_scores_loop

def timed(fn, device, reps=1):
    "Fastest of `reps` calls after a warm-up (and compilation): the least disturbed by other work on a shared machine."
    fn()
    if device == 'cuda': torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    best = float('inf')
    for _ in range(reps):
        t = time.perf_counter(); out = fn()
        if device == 'cuda': torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best, out

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--n-img', type=int, default=100); p.add_argument('--n-txt', type=int, default=500)
    p.add_argument('--R', type=int, default=196); p.add_argument('--L', type=int, default=32); p.add_argument('--d', type=int, default=768)
    p.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16', 'float16'])
    p.add_argument('--backend', default=None, help='comma-separated backends (default: torch,compile,triton on CUDA, torch on CPU)')
    p.add_argument('--no-loop', action='store_true', help='skip the per-caption loop'); p.add_argument('--reps', type=int, default=1, help='timed calls per row (the fastest is reported)')
    p.add_argument('--json', default=None)
    a = p.parse_args(argv)
    backends = (a.backend or ('torch,compile,triton' if a.device == 'cuda' else 'torch')).split(',')
    g = torch.Generator().manual_seed(0)
    dt = getattr(torch, a.dtype)
    img = torch.randn(a.n_img, a.R, a.d, generator=g).to(a.device, dt)
    txt = torch.randn(a.n_txt, a.L, a.d, generator=g).to(a.device, dt)
    lens = torch.randint(4, a.L + 1, (a.n_txt,), generator=g)
    mask = (torch.arange(a.L)[None] < lens[:, None]).to(a.device)
    pairs, flop = a.n_img * a.n_txt, 2 * a.n_img * a.n_txt * a.R * a.L * a.d      # floor: the s = t.v products
    rows = []
    with torch.no_grad():
        for scoring in ('i2t', 't2i'):
            ref, loop_s = None, None
            if not a.no_loop: loop_s, _ = timed(lambda: scan_scores_loop(img, txt, mask, scoring), a.device, a.reps)
            for b in ['torch'] + [b for b in backends if b != 'torch']:
                s, out = timed(lambda: scan_scores(img, txt, mask, scoring, backend=b), a.device, a.reps)
                if ref is None: ref = out
                if b not in backends: continue
                rows.append(dict(scoring=scoring, backend=b, seconds=s, pairs_per_s=pairs / s, TFLOP_per_s=flop / s / 1e12,
                                 peak_device_GiB=torch.cuda.max_memory_allocated() / 2**30 if a.device == 'cuda' else None,
                                 speedup_vs_loop=loop_s / s if loop_s else None, max_abs_diff_vs_torch=(out - ref).abs().max().item()))
            if loop_s: rows.append(dict(scoring=scoring, backend='loop', seconds=loop_s, pairs_per_s=pairs / loop_s, TFLOP_per_s=flop / loop_s / 1e12,
                                        peak_device_GiB=None, speedup_vs_loop=1.0, max_abs_diff_vs_torch=None))
    dev = torch.cuda.get_device_name() if a.device == 'cuda' else f"{platform.processor() or platform.machine()} CPU x{torch.get_num_threads()} threads"
    print(f"device: {dev}; n_img={a.n_img} n_txt={a.n_txt} R={a.R} L={a.L} d={a.d} dtype={a.dtype}")
    print(f"{'scoring':<10}{'backend':<9}{'pairs/s':>14}{'seconds':>10}{'TFLOP/s':>9}{'peak GiB':>10}{'vs loop':>9}{'max |diff|':>12}")
    fmt = lambda v, f: format(v, f) if v is not None else '-'
    for r in rows:
        print(f"{r['scoring']:<10}{r['backend']:<9}{r['pairs_per_s']:>14,.0f}{r['seconds']:>10.3f}{r['TFLOP_per_s']:>9.2f}"
              f"{fmt(r['peak_device_GiB'], '.2f'):>10}{fmt(r['speedup_vs_loop'], '.1f') + 'x':>9}{fmt(r['max_abs_diff_vs_torch'], '.1e'):>12}")
    if a.json: json.dump(dict(device=dev, args=vars(a), rows=rows), open(a.json, 'w'), indent=1)
    return rows

if __name__ == '__main__': main()
