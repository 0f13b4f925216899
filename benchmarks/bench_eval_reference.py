"""Reference-exact evaluation against the fast default, on one model and one test split, in one table.

    python benchmarks/bench_eval_reference.py --model models/emoji/best --data data/emoji          # the demo (CPU)
    python benchmarks/bench_eval_reference.py --model models/flickr30k/best --data data/flickr30k --device cuda

`reference` is `hat_nb.evaluate.REFERENCE_EVAL` (the authors' test path: encoders in fp32 without autocast, features and
scores in float64, one i2t score matrix for both recalls); `fast` is `evaluate`'s default (autocast on CUDA, fp16/fp32
features, the i2t, t2i and ensemble scorings). The i2t rows of both are compared; wall time covers encoding and scoring.
"""
import argparse, time
import torch
import pandas as pd
from hat_nb.data import find_karpathy_json, read_karpathy
from hat_nb.evaluate import evaluate
from hat_nb.model import from_pretrained, load_tokenizer

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', required=True); p.add_argument('--data', required=True); p.add_argument('--split', default='test')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu'); p.add_argument('--batch-size', type=int, default=128)
    a = p.parse_args(argv)
    model = from_pretrained(a.model).to(a.device); tok = load_tokenizer(model.cfg)
    recs = read_karpathy(find_karpathy_json(a.data), splits=a.split)
    rows = []
    for name, kw in (('fast (default)', dict(amp='auto')), ('fast, i2t only', dict(amp='auto', scoring=('i2t',))), ('reference', dict(reference=True))):
        if a.device == 'cuda': torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = evaluate(model, recs, tok, batch_size=a.batch_size, device=a.device, progress=False, verbose=False, **kw)
        if a.device == 'cuda': torch.cuda.synchronize()
        m = res['scoring']['i2t']
        rows.append(dict(setting=name, scorings='+'.join(k for k in ('i2t', 't2i', 'both') if k in res['scoring']), seconds=round(time.perf_counter() - t0, 2),
                         **{k: m[k] for k in ('i2t_R@1', 'i2t_R@5', 'i2t_R@10', 't2i_R@1', 't2i_R@5', 't2i_R@10', 'rsum')}))
    print(f"device: {torch.cuda.get_device_name() if a.device == 'cuda' else 'cpu'}, {torch.get_num_threads()} threads; "
          f"{res['n_images']} images / {res['n_captions']} captions of {a.data} ({a.split})")
    print(pd.DataFrame(rows).to_string(index=False))

if __name__ == '__main__': main()
