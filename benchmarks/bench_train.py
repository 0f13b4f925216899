"""Training-step throughput of the trainer's own step function (`hat_nb.gpu_check.bench_train_step`), several variants side by side.

    python benchmarks/bench_train.py --recipe paper_f30k --batch 64 --amp bf16 --peak-tflops 989   # H100 SXM bf16 dense
    python benchmarks/bench_train.py --cpu-table                                                 # CPU: one table, below

Variants (random weights, synthetic batch): `eager` (torch.optim.Adam, the towers training), `fused` (the trainer's default
optimizer: Adam fused into one kernel on CUDA), `compiled` (+ torch.compile of the two tower modules, the trainer's default
on CUDA), `frozen` (the trainer's defaults in a frozen-tower epoch: only the projections train, no graph through the towers),
`deterministic` (`fused` under `hat_nb.train.gpu_determinism`). FLOPs of one step are counted with torch.utils.flop_counter;
MFU = achieved / peak.

`--cpu-table` prints one table for the CPU: the demo recipe (MiniLM + Swin-T at 64 px, batch 64) and the paper recipe at
its real size (random-init Swin-B + BERT-base at 224 px, batch 8), towers training (`eager`) and frozen, with the pinned
CPU numerics (`params.yaml: cpu_numerics: pinned`, `hat_nb.pipeline.CPU_NUMERICS`) and without (`native`), each measured
in its own process (the pinning is environment read when torch starts); the last column is what the pinning costs.
"""
import argparse, json, os, subprocess, sys, tempfile
import torch
import pandas as pd
from hat_nb.gpu_check import bench_train_step
from hat_nb.config import recipe

CPU_CASES = (('demo', 64, 5), ('paper_f30k', 8, 2))   # recipe, batch, timed steps

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--recipe', default='paper_f30k'); p.add_argument('--batch', type=int, default=64)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--amp', default='bf16', choices=['bf16', 'fp16', 'none']); p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3); p.add_argument('--peak-tflops', type=float, default=None)
    p.add_argument('--variants', default=None, help='comma-separated (default: eager,fused,compiled,frozen on CUDA; eager,frozen on CPU)')
    p.add_argument('--json', default=None)
    p.add_argument('--cpu-table', action='store_true', help='demo and paper recipes, pinned and native CPU numerics: one table')
    a = p.parse_args(argv)
    if a.cpu_table: return cpu_table()
    variants = (a.variants or ('eager,fused,compiled,frozen' if a.device == 'cuda' else 'eager,frozen')).split(',')
    mc, _ = recipe(a.recipe)
    rows = bench_train_step(a.device, mc, a.batch, a.steps, a.warmup, tuple(variants), a.amp, a.peak_tflops,
                            load_weights=not a.recipe.startswith('paper'))   # paper: random weights (offline); demo: the packaged MiniLM
    print(f"device: {torch.cuda.get_device_name() if a.device == 'cuda' else 'cpu'}; recipe {a.recipe}, batch {a.batch}")
    print(pd.DataFrame([{k: v for k, v in r.items() if k != 'check'} for r in rows]).to_string(index=False))
    if a.json: json.dump(rows, open(a.json, 'w'), indent=1)
    return rows

def cpu_table():
    "Each case in its own process with pinned and with native numerics; one row per recipe and variant."
    from hat_nb.pipeline import CPU_NUMERICS, cpu_numerics_env
    base = {k: v for k, v in os.environ.items() if k not in CPU_NUMERICS} | dict(CUDA_VISIBLE_DEVICES='')
    base |= {k: CPU_NUMERICS[k] for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')}   # the same threads both ways
    got = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rec, batch, steps in CPU_CASES:
            for mode in ('pinned', 'native'):
                out = os.path.join(tmp, f'{rec}-{mode}.json')
                r = subprocess.run([sys.executable, __file__, '--recipe', rec, '--batch', str(batch), '--device', 'cpu', '--amp', 'none',
                                    '--steps', str(steps), '--warmup', '1', '--variants', 'eager,frozen', '--json', out],
                                   env=base | cpu_numerics_env(mode), capture_output=True, text=True)
                if r.returncode: sys.exit(f'{rec} ({mode}) failed:\n{r.stderr[-3000:]}')
                for r in json.load(open(out)): got[rec, batch, r['variant'], mode] = r['pairs_per_s']
    rows = [dict(recipe=rec, batch=batch, towers='training' if v == 'eager' else 'frozen',
                 pinned_pairs_per_s=got[rec, batch, v, 'pinned'], native_pairs_per_s=got[rec, batch, v, 'native'],
                 pinning_costs=f"{got[rec, batch, v, 'native'] / got[rec, batch, v, 'pinned']:.2f}x")
            for rec, batch, _ in CPU_CASES for v in ('eager', 'frozen')]
    print(f"cpu: {os.cpu_count()} cores, {base['OMP_NUM_THREADS']} threads; pairs/s of one training step (synthetic batch, random weights)")
    print(pd.DataFrame(rows).to_string(index=False))
    return rows

if __name__ == '__main__': main()
