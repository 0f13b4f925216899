"""Training-step throughput and model FLOP utilisation (MFU) of a preset, random weights, synthetic batch.

    python benchmarks/bench_train.py --recipe paper_f30k --batch 64 --amp bf16 --peak-tflops 989   # H100 SXM bf16 dense
    python benchmarks/bench_train.py --recipe demo --batch 64                                     # CPU

FLOPs of one step are counted with torch.utils.flop_counter (forward + backward, towers unfrozen); MFU = achieved / peak.
"""
import argparse, json, time
import torch
from torch.utils.flop_counter import FlopCounterMode
from hat_nb.loss import vsepp_loss
from hat_nb.model import HATModel
from hat_nb.train import recipe

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--recipe', default='paper_f30k'); p.add_argument('--batch', type=int, default=64)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--amp', default='bf16', choices=['bf16', 'fp16', 'none']); p.add_argument('--steps', type=int, default=10)
    p.add_argument('--compile', action='store_true'); p.add_argument('--peak-tflops', type=float, default=None)
    p.add_argument('--json', default=None)
    a = p.parse_args(argv)
    mc, tc = recipe(a.recipe)
    m = HATModel(mc, load_weights=not a.recipe.startswith('paper')).to(a.device).train()   # paper: random weights, offline
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    B, L = a.batch, mc.max_len
    x = torch.randn(B, 3, mc.img_size, mc.img_size, device=a.device)
    ids = torch.randint(1000, 2000, (B, L), device=a.device); mask = torch.ones(B, L, dtype=torch.bool, device=a.device)
    dt = {'bf16': torch.bfloat16, 'fp16': torch.float16, 'none': None}[a.amp] if a.device == 'cuda' else None
    fwd = torch.compile(m) if a.compile else m
    def step():
        with torch.autocast(torch.device(a.device).type, dtype=dt or torch.float32, enabled=dt is not None):
            loss = vsepp_loss(fwd(x, ids, mask).float())
        opt.zero_grad(); loss.backward(); opt.step()
    with FlopCounterMode(display=False) as fc: step()
    flop = fc.get_total_flops()
    for _ in range(2): step()
    if a.device == 'cuda': torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(a.steps): step()
    if a.device == 'cuda': torch.cuda.synchronize()
    s = (time.perf_counter() - t) / a.steps
    res = dict(device=torch.cuda.get_device_name() if a.device == 'cuda' else 'cpu', recipe=a.recipe, batch=B, amp=a.amp if dt else 'fp32', compile=a.compile,
               step_s=round(s, 4), pairs_per_s=round(B / s, 1), step_TFLOP=round(flop / 1e12, 3), achieved_TFLOP_per_s=round(flop / s / 1e12, 3),
               mfu=round(flop / s / 1e12 / a.peak_tflops, 3) if a.peak_tflops else None,
               peak_device_GiB=round(torch.cuda.max_memory_allocated() / 2**30, 2) if a.device == 'cuda' else None)
    w = max(map(len, res))
    for k, v in res.items(): print(f"{k:<{w}}  {v}")
    if a.json: json.dump(res, open(a.json, 'w'), indent=1)

if __name__ == '__main__': main()
