"""Two-stage search (FAISS prefilter on pooled embeddings + full HAT re-rank) vs full scoring, text->image; and indexing at scale.

    python benchmarks/bench_search.py --model models/emoji/best --data data/emoji --split test
    python benchmarks/bench_search.py --model models/emoji/best --data data/emoji --sizes 1000,3786,20000

The first indexes the split's images, queries every caption, and reports t2i R@1/5/10 and time per query for full scoring
and for prefilters of several sizes N (the re-rank scores only N images). With --sizes, it indexes folders of each size
(the dataset's images, then synthetic ones beyond them) with `hat-nb index` in a child process each, one table: peak
resident memory, images/s and index size per size; then, at the largest size, the first stage's exact inner-product search
against FAISS HNSW (recall@100 of HNSW against exact, ms per query) for the dataset's captions as queries.
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch
from hat_nb.data import find_karpathy_json, read_karpathy
from hat_nb.search import Searcher, build_index

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default='models/emoji/best'); p.add_argument('--data', default='data/emoji'); p.add_argument('--split', default='test')
    p.add_argument('--prefilters', default='0,10,25,50,100'); p.add_argument('--max-queries', type=int, default=None)
    p.add_argument('--json', default=None)
    p.add_argument('--sizes', default=None, help='comma-separated image counts: the indexing-at-scale table instead')
    p.add_argument('--shard-size', type=int, default=1024)
    a = p.parse_args(argv)
    if a.sizes: return scale(a)
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

def synthetic_images(d: Path, n: int, seed=0):
    "`n` distinct 72x72 PNGs of coloured shapes (a stand-in for a large photo folder; the encoder's cost does not depend on content)."
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    for i in range(n):
        im = Image.new('RGB', (72, 72), tuple(int(c) for c in rng.integers(0, 255, 3)))
        dr = ImageDraw.Draw(im)
        for _ in range(3):
            x0, y0 = rng.integers(0, 50, 2); w, h = rng.integers(10, 30, 2)
            dr.ellipse([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        im.save(d/f'synthetic_{i:06d}.png')

def index_child(img_dir, model, out, shard_size) -> dict:
    "`hat-nb index` in a child process: its peak resident memory (this process's own is not counted), wall time, index size."
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, '-m', 'hat_nb.cli', 'index', str(img_dir), '--model', str(model), '--out', str(out),
                          '--shard-size', str(shard_size)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if status: raise RuntimeError(f"hat-nb index {img_dir} failed (status {status})")
    return dict(seconds=time.perf_counter() - t, peak_GB=ru.ru_maxrss / 2**20, index_MB=sum(f.stat().st_size for f in Path(out).iterdir()) / 2**20)

def first_stage(index_dir, model, recs, n_queries=500, k=100) -> list[dict]:
    "Exact inner product (IndexFlatIP) against HNSW on the index's pooled vectors: recall@k of HNSW, ms per query."
    import faiss
    from hat_nb.search import Searcher, pooled
    s = Searcher(index_dir, model)
    q = np.concatenate([pooled(*s.encode_text([c])).numpy() for r in recs for c in r.captions[:1]][:n_queries]).astype('float32')
    x = np.load(Path(index_dir)/'pooled.npy')
    rows, exact = [], None
    for name, ix in (('exact (IndexFlatIP)', faiss.IndexFlatIP(x.shape[1])), ('HNSW32', faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT))):
        t = time.perf_counter(); ix.add(x); build = time.perf_counter() - t
        t = time.perf_counter(); _, I = ix.search(q, k); per = (time.perf_counter() - t) / len(q)
        if exact is None: exact = I
        recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(I, exact)])
        rows.append({'first stage': name, 'build s': round(build, 2), 'ms/query': round(1000 * per, 3), f'recall@{k} vs exact': round(float(recall), 4)})
    return rows

def scale(a):
    recs = read_karpathy(find_karpathy_json(a.data))
    have = sorted({r.path for r in recs})
    rows, tmp = [], Path(tempfile.mkdtemp())
    for n in [int(x) for x in a.sizes.split(',')]:
        d = tmp/f'images_{n}'; d.mkdir()
        for f in have[:n]: (d/f.name).symlink_to(f.resolve())
        if n > len(have): synthetic_images(d, n - len(have))
        r = index_child(d, a.model, tmp/f'index_{n}', a.shard_size)
        rows.append({'images': n, 'peak RSS GB': round(r['peak_GB'], 2), 'images/s': round(n / r['seconds'], 1),
                     'index MB': round(r['index_MB'], 1), 'MB per 1K images': round(1000 * r['index_MB'] / n, 1)})
    print(f"hat-nb index --shard-size {a.shard_size}, model {a.model}; {torch.get_num_threads()} threads")
    for table in (rows, first_stage(tmp/f'index_{rows[-1]["images"]}', a.model, recs)):
        keys = list(table[0]); w = max(14, *(len(k) + 2 for k in keys))
        print(''.join(f"{k:>{w}}" for k in keys))
        for r in table: print(''.join(f"{str(r[k]):>{w}}" for k in keys))
    if a.json: json.dump(dict(rows=rows), open(a.json, 'w'), indent=1)
    return rows

if __name__ == '__main__': main()
