"""Two-stage search (FAISS prefilter on pooled embeddings + full HAT re-rank) vs full scoring, text->image.

    python benchmarks/bench_search.py --model models/emoji/best --data data/emoji --split test

Indexes the split's images, queries every caption, and reports t2i R@1/5/10 and time per query for full scoring and for
prefilters of several sizes N (the re-rank scores only N images).
"""
import argparse, json, tempfile, time
from pathlib import Path
import torch
from hat_nb.data import find_karpathy_json, read_karpathy
from hat_nb.search import Searcher, build_index

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default='models/emoji/best'); p.add_argument('--data', default='data/emoji'); p.add_argument('--split', default='test')
    p.add_argument('--prefilters', default='0,10,25,50,100'); p.add_argument('--max-queries', type=int, default=None)
    p.add_argument('--json', default=None)
    a = p.parse_args(argv)
    recs = read_karpathy(find_karpathy_json(a.data), splits=a.split)
    with tempfile.TemporaryDirectory() as tmp:
        img_dir = Path(tmp)/'images'; img_dir.mkdir()
        for r in recs: (img_dir/r.path.name).symlink_to(r.path.resolve())
        t = time.perf_counter()
        build_index(img_dir, a.model, Path(tmp)/'index', progress=False)
        t_index = time.perf_counter() - t
        s = Searcher(Path(tmp)/'index', a.model)
        queries = [(c, r.path.name) for r in recs for c in r.captions][:a.max_queries]
        rows = []
        for n in [int(x) for x in a.prefilters.split(',')]:
            ranks, t = [], time.perf_counter()
            for c, truth in queries:
                got = [Path(pth).name for pth, _ in s.query(c, k=10, prefilter=n)]
                ranks.append(got.index(truth) if truth in got else 99)
            dt = (time.perf_counter() - t) / len(queries)
            r = torch.tensor(ranks)
            rows.append({'prefilter N': n or 'full', 'R@1': round(100 * (r < 1).float().mean().item(), 2), 'R@5': round(100 * (r < 5).float().mean().item(), 2),
                         'R@10': round(100 * (r < 10).float().mean().item(), 2), 'ms/query': round(1000 * dt, 2)})
    full = rows[0]['ms/query']
    for r in rows: r['speed-up'] = round(full / r['ms/query'], 2)
    print(f"{len(s.paths)} images indexed in {t_index:.1f}s; {len(queries)} text queries; t2i recall (%)")
    keys = list(rows[0])
    print(''.join(f"{k:>13}" for k in keys))
    for r in rows: print(''.join(f"{str(r[k]):>13}" for k in keys))
    if a.json: json.dump(dict(index_s=t_index, rows=rows), open(a.json, 'w'), indent=1)

if __name__ == '__main__': main()
