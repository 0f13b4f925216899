"""COCO-5K-shaped all-pairs scoring with synthetic features, per backend and scoring, in one table
(`hat_nb.gpu_check.bench_scoring`: wall time, pairs/s, achieved TFLOP/s, peak device memory, max |diff| against the first backend).

    python benchmarks/bench_coco.py                              # full shape: 5000 images x 25000 captions (needs a GPU)
    python benchmarks/bench_coco.py --n-img 100 --n-txt 500      # reduced, e.g. on a CPU
    python benchmarks/bench_coco.py --backend triton,compile,torch --scoring i2t

Three levels of 784/196/49 patches (Swin-B stages 2-4 at 224 px), 32 tokens per caption, d=768, features in bf16 on the
device (fp32 on CPU), scores in fp32, images in blocks as `hat_nb.evaluate.score_all`; every block is timed (no sampling).
"""
import argparse, json
import torch
import pandas as pd
from hat_nb.gpu_check import bench_scoring

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--n-img', type=int, default=5000); p.add_argument('--n-txt', type=int, default=25000)
    p.add_argument('--patches', default='784,196,49'); p.add_argument('--L', type=int, default=32); p.add_argument('--d', type=int, default=768)
    p.add_argument('--img-block', type=int, default=256); p.add_argument('--max-elems', type=int, default=None)
    p.add_argument('--scoring', default='i2t,t2i', help='comma-separated'); p.add_argument('--json', default=None)
    p.add_argument('--backend', default=None, help='comma-separated backends (default: triton,torch on CUDA, torch on CPU)')
    a = p.parse_args(argv)
    rows = bench_scoring(a.device, a.n_img, a.n_txt, tuple(int(r) for r in a.patches.split(',')), a.L, a.d,
                         torch.bfloat16 if a.device == 'cuda' else torch.float32, a.img_block,
                         tuple((a.backend or ('triton,torch' if a.device == 'cuda' else 'torch')).split(',')), sample={},
                         scoring=tuple(a.scoring.split(',')), max_elems=a.max_elems)
    print(f"device: {torch.cuda.get_device_name() if a.device == 'cuda' else 'cpu'}")
    print(pd.DataFrame([{k: v for k, v in r.items() if k not in ('check', 'extrapolated_from')} for r in rows]).to_string(index=False))
    if a.json: json.dump(rows, open(a.json, 'w'), indent=1)
    return rows

if __name__ == '__main__': main()
