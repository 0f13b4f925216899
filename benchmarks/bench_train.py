"""Training-step throughput of the trainer's own step function (`hat_nb.train.train_step`), several variants side by side.

    python benchmarks/bench_train.py --recipe paper_f30k --batch 64 --amp bf16 --peak-tflops 989   # H100 SXM bf16 dense
    python benchmarks/bench_train.py --recipe demo --batch 64                                     # CPU

Variants (random weights, synthetic batch): `eager` (torch.optim.Adam, the towers training), `fused` (the trainer's default
optimizer: Adam fused into one kernel on CUDA), `compiled` (+ torch.compile of the two tower modules, the trainer's default
on CUDA), `frozen` (the trainer's defaults in a frozen-tower epoch: only the projections train, no graph through the towers).
FLOPs of one step are counted with torch.utils.flop_counter (towers training); MFU = achieved / peak.
"""
import argparse, json, time
import torch
from torch.utils.flop_counter import FlopCounterMode
from hat_nb.evaluate import amp_dtype
from hat_nb.model import HATModel
from hat_nb.train import compile_towers, make_optimizer, set_frozen, recipe, train_step

def run_variant(name, a, mc, tc, batch, flop):
    torch.manual_seed(0)
    m = HATModel(mc, load_weights=not a.recipe.startswith('paper')).to(a.device).train()   # paper: random weights, offline
    set_frozen(m, 0 if name == 'frozen' else 10**6, tc)
    if name == 'eager': opt = torch.optim.Adam(m.parameters(), lr=tc.lr)
    else: opt, _ = make_optimizer(m, tc, 1, a.device)
    if name in ('compiled', 'frozen'): compile_towers(m, tc, a.device)
    dt = amp_dtype(a.device, tc.amp)
    scaler = torch.amp.GradScaler('cuda', enabled=dt == torch.float16)
    step = lambda: train_step(m, m, opt, scaler, batch, tc, a.device, dt)
    if flop is None:
        with FlopCounterMode(display=False) as fc: step()
        flop = fc.get_total_flops()
    for _ in range(a.warmup): step()
    if a.device == 'cuda': torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(a.steps): loss = step()
    loss.item()                                                      # one synchronisation, as the trainer every log_every steps
    s = (time.perf_counter() - t) / a.steps
    return flop, dict(variant=name, step_ms=round(1000 * s, 1), pairs_per_s=round(a.batch / s, 1), achieved_TFLOP_per_s=round(flop / s / 1e12, 3),
                      mfu=round(flop / s / 1e12 / a.peak_tflops, 3) if a.peak_tflops else None,
                      peak_device_GiB=round(torch.cuda.max_memory_allocated() / 2**30, 2) if a.device == 'cuda' else None)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--recipe', default='paper_f30k'); p.add_argument('--batch', type=int, default=64)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--amp', default='bf16', choices=['bf16', 'fp16', 'none']); p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3); p.add_argument('--peak-tflops', type=float, default=None)
    p.add_argument('--variants', default=None, help='comma-separated (default: eager,fused,compiled,frozen on CUDA; eager,frozen on CPU)')
    p.add_argument('--json', default=None)
    a = p.parse_args(argv)
    variants = (a.variants or ('eager,fused,compiled,frozen' if a.device == 'cuda' else 'eager,frozen')).split(',')
    mc, tc = recipe(a.recipe, batch_size=a.batch, amp=a.amp, compile='on' if a.device == 'cuda' else 'off', loss='vsepp')
    B, L = a.batch, mc.max_len
    batch = dict(images=torch.randn(B, 3, mc.img_size, mc.img_size), input_ids=torch.randint(1000, 2000, (B, L)),
                 attention_mask=torch.ones(B, L, dtype=torch.bool), img_idx=torch.arange(B))
    if a.device == 'cuda': batch = {k: v.pin_memory() for k, v in batch.items()}
    rows, flop = [], None
    for v in variants:
        f, r = run_variant(v, a, mc, tc, batch, flop if v != 'frozen' else None)
        if v != 'frozen': flop = f
        rows.append(r)
    dev = torch.cuda.get_device_name() if a.device == 'cuda' else 'cpu'
    print(f"device: {dev}; recipe {a.recipe}, batch {B}, amp {a.amp if a.device == 'cuda' else 'fp32 (CPU)'}; step TFLOP (towers training): {flop / 1e12:.3f}")
    cols = list(rows[0])
    print(''.join(f"{c:>22}" for c in cols))
    for r in rows: print(''.join(f"{str(r[c]):>22}" for c in cols))
    if a.json: json.dump(dict(device=dev, args=vars(a), step_TFLOP=flop / 1e12, rows=rows), open(a.json, 'w'), indent=1)
    return rows

if __name__ == '__main__': main()
