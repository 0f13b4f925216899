"""Execute the library notebooks so that their committed outputs are current, or check that they still are.

    python tools/run_notebooks.py [NB ...]          # execute in place (default: every notebook in nbs/), then nbdev_clean
    python tools/run_notebooks.py --check NB ...    # execute in memory; fail if a cell raises or an output changed

Every cell runs (the `slow` ones too; not those marked `#| eval: false`, which need a trained model: their committed
outputs are kept), in the notebook's folder, on the CPU. Outputs written to stderr (progress bars,
warnings) are dropped. `--check` compares text outputs with numbers allowed a relative difference of 1e-3 (another CPU
may round the last digits of a float differently) and temporary paths ignored, and requires each figure of the committed notebook to still be drawn.
"""
import argparse, os, re, subprocess, sys, tempfile
from pathlib import Path

os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')            # outputs are the CPU's
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TQDM_DISABLE', '1')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hat_nb.pipeline import cpu_numerics_env
os.environ.update(cpu_numerics_env('pinned'))                # the committed outputs are those of pinned CPU numerics, as the stages'
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

ROOT = Path(__file__).resolve().parents[1]
NUM = re.compile(r'-?\d+\.\d+(?:e[-+]?\d+)?|-?\d+e[-+]?\d+')

def _not_evaluated(cell) -> bool:
    "A cell marked `#| eval: false` (as nbdev_test skips it): it needs files a run makes; its committed outputs stay."
    return re.search(r'^#\|\s*eval:\s*false', cell.source, re.M) is not None

def execute(path: Path):
    "The notebook at `path` with fresh outputs (stderr streams dropped); raises on the first failing cell."
    nb, cwd = read_nb(path), os.getcwd()
    os.chdir(path.parent)
    try:
        sh = CaptureShell(mpl_format='png')
        sh.run_all(nb, exc_stop=True, preproc=_not_evaluated)
    finally: os.chdir(cwd)
    for c in nb.cells:
        if c.cell_type == 'code':
            c.outputs = [o for o in c.get('outputs', []) if not (o.get('output_type') == 'stream' and o.get('name') == 'stderr')]
    return nb

def _text(o) -> str:
    if o.get('output_type') == 'stream': return ''.join(o.get('text', ''))
    if o.get('output_type') == 'error': return f"{o.get('ename')}: {o.get('evalue')}"
    d = o.get('data', {})
    return '' if 'image/png' in d else ''.join(d.get('text/plain', ''))

def _normalise(t: str) -> str:
    "Paths of temporary folders and of the checkout vary from run to run."
    t = t.replace(str(ROOT), '<repo>')
    return re.sub(r'/tmp(?:/(?:tmp|hat_nb-nb-)[\w-]+)+', '<tmp>', t)

def _same_text(a: str, b: str) -> bool:
    "Equal up to temporary paths, and numbers that differ by at most 1e-3 relatively (1e-6 absolutely)."
    a, b = _normalise(a), _normalise(b)
    if NUM.sub('#', a) != NUM.sub('#', b): return False
    return all(abs(float(x) - float(y)) <= max(1e-6, 1e-3 * max(abs(float(x)), abs(float(y))))
               for x, y in zip(NUM.findall(a), NUM.findall(b)))

def differences(committed, fresh) -> list[str]:
    "Cells whose outputs changed between the committed notebook and a fresh run."
    out = []
    code = lambda nb: [c for c in nb.cells if c.cell_type == 'code']
    for i, (c, f) in enumerate(zip(code(committed), code(fresh))):
        a = '\n'.join(_text(o) for o in c.get('outputs', [])).strip()
        b = '\n'.join(_text(o) for o in f.get('outputs', [])).strip()
        figs = lambda cell: sum('image/png' in o.get('data', {}) for o in cell.get('outputs', []))
        if not _same_text(a, b): out.append(f"code cell {i} ({c.source.splitlines()[0][:60]!r}): committed {a[:300]!r}, now {b[:300]!r}")
        elif figs(c) != figs(f): out.append(f"code cell {i}: {figs(c)} figure(s) committed, {figs(f)} drawn now")
    return out

def run_one(p: Path, check: bool) -> int:
    with tempfile.TemporaryDirectory(prefix='hat_nb-nb-') as tmp:       # the notebook's temporary files go, with it
        os.environ['TMPDIR'], tempfile.tempdir = tmp, tmp
        fresh = execute(p)
    tempfile.tempdir = None; os.environ.pop('TMPDIR')
    if not check:
        write_nb(fresh, p); print(f"{p.name}: executed"); return 0
    diff = differences(read_nb(p), fresh)
    for d in diff: print(f"{p.name}: {d}")
    if diff: print(f"{p.name}: outputs changed; re-run `python tools/run_notebooks.py {p.relative_to(ROOT)}` and commit")
    return 1 if diff else 0

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('notebooks', nargs='*', type=Path)
    ap.add_argument('--check', action='store_true', help='execute in memory and compare with the committed outputs')
    a = ap.parse_args()
    nbs = [p.resolve() for p in a.notebooks] or sorted((ROOT/'nbs').glob('[0-9]*.ipynb'))
    if len(nbs) == 1: rc = run_one(nbs[0], a.check)
    else:   # one process per notebook, as each runs alone in the tests
        rc = max(subprocess.run([sys.executable, __file__, str(p)] + ['--check'] * a.check).returncode for p in nbs)
    if not a.check: subprocess.run([str(Path(sys.executable).parent/'nbdev_clean')], cwd=ROOT, check=True)
    sys.exit(rc)

if __name__ == '__main__': main()
