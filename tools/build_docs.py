"""Build the documentation site: the home page is the README, then every notebook of nbs/ with its committed outputs.

    python tools/build_docs.py            # writes _site/ (open _site/index.html)

Sphinx + MyST-NB render the notebooks as they are committed (nothing is executed). Equations are typeset by MathJax 3,
served from the site itself: the npm package `mathjax` is fetched once with `npm pack` (checksum verified) and cached
beside the demo data's tarball, so later builds are offline.
"""
import argparse, hashlib, json, shutil, subprocess, sys, tarfile, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MATHJAX, MATHJAX_SHA256 = 'mathjax@3.2.2', '1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09'

def mathjax_tarball() -> Path:
    "The MathJax npm tarball, from the cache or `npm pack` (checksum verified)."
    from hat_nb.data import cache_dir
    tgz = cache_dir()/'mathjax-3.2.2.tgz'
    if not tgz.is_file():
        if not shutil.which('npm'): sys.exit(f"build_docs: {tgz} is not cached and npm is not installed to fetch {MATHJAX}")
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run(['npm', 'pack', MATHJAX, '--silent', '--pack-destination', tmp], capture_output=True, text=True)
            if r.returncode: sys.exit(f"build_docs: `npm pack {MATHJAX}` failed: {r.stderr.strip()[-500:]}")
            shutil.move(Path(tmp)/tgz.name, tgz)
    if (h := hashlib.sha256(tgz.read_bytes()).hexdigest()) != MATHJAX_SHA256:
        tgz.unlink(); sys.exit(f"build_docs: {tgz}: checksum mismatch (got {h}); removed, run again to fetch it anew")
    return tgz

def for_reading(nb: dict) -> dict:
    "The notebook as a reader sees it: without `#| hide` and `#| default_exp` cells, code without nbdev's `#|` directives."
    cells = []
    for c in nb['cells']:
        lines = ''.join(c['source']).splitlines(keepends=True)
        if c['cell_type'] == 'code':
            if any(l.startswith(('#| hide', '#| default_exp')) for l in lines[:2]): continue
            lines = [l for l in lines if not l.startswith('#|')]
        cells.append({**c, 'source': ''.join(lines)})
    return {**nb, 'cells': cells}

def stage(src: Path):
    "Sources of the site in `src`: conf.py, index.md (the README and the table of contents), the notebooks, MathJax."
    shutil.copy(ROOT/'docs/conf.py', src/'conf.py')
    nbs = sorted((ROOT/'nbs').glob('[0-9]*.ipynb'))
    for nb in nbs: (src/nb.name).write_text(json.dumps(for_reading(json.loads(nb.read_text()))))
    readme = (ROOT/'README.md').read_text()
    toc = '\n'.join(p.stem for p in nbs)
    (src/'index.md').write_text(f"{readme}\n\n```{{toctree}}\n:maxdepth: 1\n:caption: Notebooks\n\n{toc}\n```\n")
    mj = src/'_static/mathjax'
    with tarfile.open(mathjax_tarball()) as t:
        for m in t.getmembers():
            if m.isfile() and (m.name == 'package/es5/tex-mml-chtml.js' or m.name.startswith('package/es5/output/chtml/fonts/woff-v2/')):
                dest = mj/m.name.removeprefix('package/es5/'); dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(t.extractfile(m).read())

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', type=Path, default=ROOT/'_site')
    a = ap.parse_args()
    if a.out.exists() and any(a.out.iterdir()) and not (a.out/'objects.inv').is_file():
        sys.exit(f"build_docs: {a.out} exists and is not a site built by this script; refusing to replace it")
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)/'src'; src.mkdir()
        stage(src)
        html = Path(tmp)/'build/html'                     # MyST-NB writes beside the output folder, so build in here
        r = subprocess.run([sys.executable, '-m', 'sphinx', '-b', 'html', '-q', '-W', '--keep-going', '-d', str(Path(tmp)/'doctrees'),
                            str(src), str(html)])
        if r.returncode: sys.exit(f"build_docs: sphinx-build failed (exit {r.returncode}); see the warnings above")
        shutil.rmtree(a.out, ignore_errors=True); shutil.copytree(html, a.out)
    print(f"site written to {a.out}/index.html in {time.time() - t0:.0f} s")

if __name__ == '__main__': main()
