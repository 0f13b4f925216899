"""`hat-nb serve` under load on loopback: 1, 8 and 32 keep-alive clients sending text queries, against an index of real
images and a synthetic 20,000-image index of the same model; p50/p99 latency, queries/s, errors beside the 503s, the
server's memory (PSS of its processes, shared pages once) sampled over `--rss-queries` queries. Bounded in count and time.

    python benchmarks/bench_serve.py --index INDEX [--captions FILE] [--synthetic 20000] [--rss-queries 10000]

The server runs as its own process (`hat-nb serve --port 0`), as a user starts it; the clients are threads of this one.
"""
import argparse, http.client, json, os, re, shutil, subprocess, sys, tempfile, threading, time, urllib.parse
from pathlib import Path
import numpy as np

QUERIES = ['a red heart', 'smiling face with sunglasses', 'a cat', 'flag of japan', 'person running', 'green apple',
           'a blue car', 'crying face', 'thumbs up: dark skin tone', 'a rocket', 'pile of poo', 'rainbow']

def synthetic_index(like: Path, n: int, out: Path, seed=0) -> Path:
    "An index of `n` rows shaped like `like` (same model, tokens drawn at random, no image files): for search speed only."
    import faiss, torch
    from hat_nb.search import pooled
    meta = json.loads((like/'meta.json').read_text())
    rng, out = np.random.default_rng(seed), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    toks = []
    for l in range(meta['n_levels']):
        shape = np.load(like/f'tokens_L{l}.npy', mmap_mode='r').shape[1:]
        t = rng.standard_normal((n, *shape), dtype=np.float32).astype(np.float16)
        np.save(out/f'tokens_L{l}.npy', t); toks.append(torch.from_numpy(t))
    pool = pooled(toks).numpy().astype('float32')
    np.save(out/'pooled.npy', pool)
    idx = faiss.IndexFlatIP(pool.shape[1]); idx.add(pool); faiss.write_index(idx, str(out/'index.faiss'))
    paths = [f'synthetic/{i:06d}.png' for i in range(n)]
    meta |= dict(paths=paths, keys={p: [0, 0] for p in paths}, unreadable=[], root=str(out/'images'))
    (out/'meta.json').write_text(json.dumps(meta))
    return out

def start_server(index, captions, workers, queue, processes=None):
    cmd = [str(Path(sys.executable).parent/'hat-nb'), 'serve', str(index), '--port', '0', '--queue', str(queue)]
    cmd += ['--workers', str(workers)] if workers else []
    cmd += ['--processes', str(processes)] if processes else []
    cmd += ['--captions', str(captions)] if captions else []
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.search(r'http://127\.0\.0\.1:(\d+)/', line)
    if not m: p.kill(); raise RuntimeError(f'server did not start: {line}{p.stderr.read()[-2000:]}')
    return p, int(m.group(1))

def tree_pids(pid) -> list:
    "The server process and its children (`--processes` > 1: a supervisor and one child per process)."
    kids = Path(f'/proc/{pid}/task/{pid}/children').read_text().split()
    return [pid] + [int(k) for k in kids]

def memory_mb(pid) -> float:
    "Proportional set size of the server's processes together (shared pages counted once), MB."
    total = 0
    for p in tree_pids(pid):
        total += int(re.search(r'^Pss:\s+(\d+)', Path(f'/proc/{p}/smaps_rollup').read_text(), re.M).group(1))
    return total / 1024

def load(port, clients, total, max_s, k=10):
    "`total` queries from `clients` threads (each its own keep-alive connection), stopped after `max_s` seconds."
    lat, codes, lock, stop, sent = [], {}, threading.Lock(), time.time() + max_s, [0]
    def client(c):
        h = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
        while time.time() < stop:
            with lock:
                if sent[0] >= total: break
                sent[0] += 1; i = sent[0]
            q = urllib.parse.quote(QUERIES[i % len(QUERIES)])
            t = time.perf_counter()
            try:
                h.request('GET', f'/api/search?q={q}&k={k}'); r = h.getresponse(); r.read(); code = r.status
            except OSError:
                code = 'socket'; h.close(); h = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
            dt = time.perf_counter() - t
            if code == 503:   # a client that honours Retry-After waits before its next query
                time.sleep(float(r.getheader('Retry-After', 1)))
            with lock:
                codes[code] = codes.get(code, 0) + 1
                if code == 200: lat.append(dt)
    t0 = time.time()
    ts = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in ts: t.start()
    for t in ts: t.join()
    wall = time.time() - t0
    lat = np.array(lat) * 1000
    return dict(clients=clients, queries=sum(codes.values()), ok=codes.get(200, 0), busy_503=codes.get(503, 0),
                errors=sum(v for c, v in codes.items() if c not in (200, 503)),
                p50_ms=round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
                p99_ms=round(float(np.percentile(lat, 99)), 1) if len(lat) else None,
                answered_per_s=round(codes.get(200, 0) / wall, 1))

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--index', required=True); p.add_argument('--captions', default=None)
    p.add_argument('--synthetic', type=int, default=20_000, help='rows of the synthetic index (0: none)')
    p.add_argument('--clients', default='1,8,32'); p.add_argument('--queries', type=int, default=400, help='per client count')
    p.add_argument('--max-s', type=float, default=30, help='time limit of one run')
    p.add_argument('--workers', type=int, default=None, help='the server\'s --workers (default: its own)'); p.add_argument('--processes', type=int, default=None); p.add_argument('--queue', type=int, default=16)
    p.add_argument('--rss-queries', type=int, default=10_000, help='queries at 8 clients while sampling memory (0: skip)')
    a = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp())
    indexes = [('real', Path(a.index))]
    if a.synthetic: indexes.append((f'synthetic {a.synthetic:,}', synthetic_index(Path(a.index), a.synthetic, tmp/'synthetic')))
    rows = []
    try:
        for name, idx in indexes:
            server, port = start_server(idx, a.captions, a.workers, a.queue, a.processes)
            try:
                load(port, 1, 20, 30)                                             # warm-up
                for c in map(int, a.clients.split(',')):
                    rows.append(dict(index=name) | load(port, c, a.queries if c == 1 else a.queries * 2, a.max_s))
                mem = [memory_mb(server.pid)]
                if a.rss_queries and name == 'real':
                    for part in range(10):
                        load(port, 8, a.rss_queries // 10, 600)
                        mem.append(memory_mb(server.pid))
                    print(f'server memory (PSS of its processes) over {a.rss_queries:,} queries at 8 clients, MB, before and '
                          'after each tenth: ' + ' '.join(f'{m:.0f}' for m in mem))
                for r in rows:
                    if r['index'] == name: r['server_MB'] = round(max(mem))
            finally:
                server.terminate(); server.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    import pandas as pd
    print(pd.DataFrame(rows).to_string(index=False))
    return rows

if __name__ == '__main__': main()
