"""Throughput of `scan_scores` (batched, chunked) vs the naive per-caption loop, same inputs, same device.

    python benchmarks/bench_scan.py [--device cpu|cuda] [--n-img 100] [--n-txt 500] [--json out.json]

Shapes default to one HAT level of the paper at 224 px (R=196 patches, L=32 tokens incl. padding, d=768).
"""
import argparse, json, platform, time
import torch
from hat_nb.align import scan_scores, scan_scores_loop

def timed(fn, device, reps=1):
    fn()                                                    # warm-up
    if device == 'cuda': torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps): fn()
    if device == 'cuda': torch.cuda.synchronize()
    return (time.perf_counter() - t) / reps

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--n-img', type=int, default=100); p.add_argument('--n-txt', type=int, default=500)
    p.add_argument('--R', type=int, default=196); p.add_argument('--L', type=int, default=32); p.add_argument('--d', type=int, default=768)
    p.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16', 'float16'])
    p.add_argument('--json', default=None)
    a = p.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    dt = getattr(torch, a.dtype)
    img = torch.randn(a.n_img, a.R, a.d, generator=g).to(a.device, dt)
    txt = torch.randn(a.n_txt, a.L, a.d, generator=g).to(a.device, dt)
    lens = torch.randint(4, a.L + 1, (a.n_txt,), generator=g)
    mask = (torch.arange(a.L)[None] < lens[:, None]).to(a.device)
    pairs = a.n_img * a.n_txt
    rows = []
    for direction in ('i2t', 't2i'):
        with torch.no_grad():
            tb = timed(lambda: scan_scores(img, txt, mask, direction), a.device)
            tl = timed(lambda: scan_scores_loop(img, txt, mask, direction), a.device)
            err = (scan_scores(img, txt, mask, direction) - scan_scores_loop(img, txt, mask, direction)).abs().max().item()
        rows.append(dict(direction=direction, batched_pairs_per_s=pairs / tb, loop_pairs_per_s=pairs / tl, speedup=tl / tb, max_abs_diff=err))
    dev = torch.cuda.get_device_name() if a.device == 'cuda' else f"{platform.processor() or platform.machine()} CPU x{torch.get_num_threads()} threads"
    print(f"device: {dev}; n_img={a.n_img} n_txt={a.n_txt} R={a.R} L={a.L} d={a.d} dtype={a.dtype}")
    print(f"{'direction':<10}{'batched pairs/s':>18}{'loop pairs/s':>16}{'speed-up':>10}{'max |diff|':>12}")
    for r in rows:
        print(f"{r['direction']:<10}{r['batched_pairs_per_s']:>18,.0f}{r['loop_pairs_per_s']:>16,.0f}{r['speedup']:>9.1f}x{r['max_abs_diff']:>12.1e}")
    if a.json: json.dump(dict(device=dev, args=vars(a), rows=rows), open(a.json, 'w'), indent=1)
    return rows

if __name__ == '__main__': main()
