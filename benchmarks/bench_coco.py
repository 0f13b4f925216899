"""COCO-5K-shaped all-pairs scoring with synthetic features: wall time, peak host and device memory, achieved FLOP/s.

    python benchmarks/bench_coco.py                      # full shape: 5000 images x 25000 captions (needs a GPU)
    python benchmarks/bench_coco.py --n-img 100 --n-txt 500   # reduced, e.g. on a CPU
    python benchmarks/bench_coco.py --backend triton,compile,torch   # several backends, one table (default: triton,torch on CUDA)

Three levels of 784/196/49 patches (Swin-B stages 2-4 at 224 px), 32 tokens per caption, d=768, i2t direction,
features in bf16 on the device (fp32 on CPU), scores in fp32, images processed in blocks (as `hat_nb.evaluate.score_all`);
one table row per backend (wall time, pairs/s, achieved TFLOP/s, peak device memory, max |diff| against the first backend).
"""
import argparse, json, resource, time
import torch
from tqdm.auto import tqdm
from hat_nb.align import scan_scores

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--n-img', type=int, default=5000); p.add_argument('--n-txt', type=int, default=25000)
    p.add_argument('--patches', default='784,196,49'); p.add_argument('--L', type=int, default=32); p.add_argument('--d', type=int, default=768)
    p.add_argument('--img-block', type=int, default=64); p.add_argument('--max-elems', type=int, default=2**27)
    p.add_argument('--direction', default='i2t'); p.add_argument('--json', default=None)
    p.add_argument('--backend', default=None, help='comma-separated backends (default: triton,torch on CUDA, torch on CPU)')
    a = p.parse_args(argv)
    backends = (a.backend or ('triton,torch' if a.device == 'cuda' else 'torch')).split(',')
    dev, R = a.device, [int(r) for r in a.patches.split(',')]
    dt = torch.bfloat16 if dev == 'cuda' else torch.float32
    g = torch.Generator(dev).manual_seed(0)
    img = [torch.randn(a.n_img, r, a.d, device=dev, dtype=dt, generator=g) for r in R]
    txt = [torch.randn(a.n_txt, a.L, a.d, device=dev, dtype=dt, generator=g) for _ in R]
    lens = torch.randint(8, a.L + 1, (a.n_txt,), device=dev, generator=g)
    mask = torch.arange(a.L, device=dev)[None] < lens[:, None]
    flop = 2 * a.n_img * a.n_txt * a.L * a.d * sum(R)            # the s = t.v products: the floor
    feats_gib = sum(t.numel() * t.element_size() for t in img + txt) / 2**30
    rows, first = [], {}
    for b in backends:
        out = torch.empty(a.n_img, a.n_txt, device=dev)
        score = lambda i: sum(scan_scores(im[i:i+a.img_block], tx, mask, a.direction, max_elems=a.max_elems, backend=b) for im, tx in zip(img, txt))
        with torch.no_grad():
            score(0)                                                  # warm-up / compilation, not timed
            if dev == 'cuda': torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            for i in tqdm(range(0, a.n_img, a.img_block), desc=f'scoring ({b})', unit='block'):
                out[i:i+a.img_block] = score(i)
            if dev == 'cuda': torch.cuda.synchronize()
        wall = time.perf_counter() - t
        first[b] = out[:a.img_block].clone()
        rows.append(dict(backend=b, wall_s=round(wall, 2), pairs_per_s=round(a.n_img * a.n_txt / wall), achieved_TFLOP_per_s=round(flop / wall / 1e12, 2),
                         peak_device_GiB=round(torch.cuda.max_memory_allocated() / 2**30, 2) if dev == 'cuda' else None,
                         full_5k_estimate_s=round(wall * 5000 * 25000 / (a.n_img * a.n_txt), 1),
                         max_abs_diff_vs_first=round((first[b] - first[backends[0]]).abs().max().item(), 6)))
        del out
    res = dict(device=torch.cuda.get_device_name() if dev == 'cuda' else 'cpu', n_img=a.n_img, n_txt=a.n_txt, patches=R, L=a.L, d=a.d,
               direction=a.direction, features_GiB=round(feats_gib, 2), matmul_TFLOP=round(flop / 1e12, 1),
               peak_host_GiB=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2), rows=rows)
    print(' '.join(f"{k}={v}" for k, v in res.items() if k != 'rows'))
    cols = list(rows[0])
    print(''.join(f"{c:>22}" for c in cols))
    for r in rows: print(''.join(f"{str(r[c]):>22}" for c in cols))
    if a.json: json.dump(res, open(a.json, 'w'), indent=1)
    return res

if __name__ == '__main__': main()
