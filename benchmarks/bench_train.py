"""Training-step throughput of the trainer's own step function (`hat_nb.gpu_check.bench_train_step`), several variants side by side.

    python benchmarks/bench_train.py --recipe paper_f30k --batch 64 --amp bf16 --peak-tflops 989   # H100 SXM bf16 dense
    python benchmarks/bench_train.py --recipe demo --batch 64                                     # CPU

Variants (random weights, synthetic batch): `eager` (torch.optim.Adam, the towers training), `fused` (the trainer's default
optimizer: Adam fused into one kernel on CUDA), `compiled` (+ torch.compile of the two tower modules, the trainer's default
on CUDA), `frozen` (the trainer's defaults in a frozen-tower epoch: only the projections train, no graph through the towers),
`deterministic` (`fused` under `hat_nb.train.gpu_determinism`). FLOPs of one step are counted with torch.utils.flop_counter;
MFU = achieved / peak.
"""
import argparse, json
import torch
import pandas as pd
from hat_nb.gpu_check import bench_train_step
from hat_nb.config import recipe

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
    mc, _ = recipe(a.recipe)
    rows = bench_train_step(a.device, mc, a.batch, a.steps, a.warmup, tuple(variants), a.amp, a.peak_tflops,
                            load_weights=not a.recipe.startswith('paper'))   # paper: random weights (offline); demo: the packaged MiniLM
    print(f"device: {torch.cuda.get_device_name() if a.device == 'cuda' else 'cpu'}; recipe {a.recipe}, batch {a.batch}")
    print(pd.DataFrame([{k: v for k, v in r.items() if k != 'check'} for r in rows]).to_string(index=False))
    if a.json: json.dump(rows, open(a.json, 'w'), indent=1)
    return rows

if __name__ == '__main__': main()
