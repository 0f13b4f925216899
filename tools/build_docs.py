"""Build the documentation site: the home page is the README, then every notebook of nbs/ with its committed outputs,
then an API index of every public symbol.

    python tools/build_docs.py            # writes _site/ (open _site/index.html)

Sphinx + MyST-NB render the notebooks with their committed outputs, in the furo theme (search, a per-page outline). Only
nbdev's own documentation step runs: its processors `add_show_docs` and `exec_show_docs` insert a `show_doc` cell after
every exported definition and execute it (with the notebook's export and import cells), which renders each public
function's and class's docstring; the signature shown is the symbol's own (`signature_code`: `def f(...) -> T`,
`class C(Base)` with its `__init__`), and the exported source follows it folded (one click away), so that each symbol is
shown once. Equations are typeset by MathJax 3, served from the site itself: the npm
package `mathjax` is fetched once with `npm pack` (checksum verified) and cached beside the demo data's tarball, so later
builds are offline.
"""
import argparse, html, importlib, inspect, json, os, re, shutil, subprocess, sys, tarfile, tempfile, time, warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MATHJAX, MATHJAX_SHA256 = 'mathjax@3.2.2', '1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09'

def mathjax_tarball() -> Path:
    "The MathJax npm tarball, from the cache or `npm pack` (checksum verified)."
    from npm_cache import npm_tarball
    return npm_tarball(MATHJAX, MATHJAX_SHA256, 'build_docs')

def module_of(nb: dict) -> str | None:
    "The module a notebook exports to (its `#| default_exp`), or None."
    for c in nb['cells']:
        if m := re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(c['source']), re.M): return m.group(1)

def anchor(module: str, name: str) -> str: return f'api-{module}-{name}'

def with_show_docs(path: Path) -> dict:
    "The notebook after nbdev's processors `add_show_docs` and `exec_show_docs`: a `show_doc` cell, executed, after every exported definition."
    from execnb.nbio import read_nb, nb2dict
    from nbdev.process import NBProcessor
    from nbdev.processors import populate_language, add_show_docs, exec_show_docs
    nb, cwd = read_nb(path), os.getcwd()
    try:
        os.chdir(path.parent)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')          # nbdev's notice on cells that mix imports and code
            NBProcessor(nb=nb, procs=[populate_language, add_show_docs, exec_show_docs], rm_directives=False).process()
    finally: os.chdir(cwd)
    nb, keys = nb2dict(nb), ('id', 'cell_type', 'metadata', 'source', 'outputs', 'execution_count')
    return {**nb, 'cells': in_definition_order([{k: c[k] for k in keys if k in c} for c in nb['cells']])}

def in_definition_order(cells: list) -> list:
    "`add_show_docs` inserts the `show_doc` cells of one exported cell in reverse order; each run of them is put back in order."
    out, run = [], []
    for c in cells + [None]:
        if c is not None and c['cell_type'] == 'code' and ''.join(c['source']).startswith('show_doc('): run.append(c); continue
        out += run[::-1] + ([c] if c is not None else []); run = []
    return out

def _params(sig: inspect.Signature, skip_self=False, factories: dict = {}) -> list[str]:
    """Each parameter as written in the source: `name: annotation = default` (annotations are strings: `from __future__`);
    `factories`: a dataclass field's `field(default_factory=...)`, which the signature shows as `<factory>`."""
    out = []
    for i, p in enumerate(sig.parameters.values()):
        if skip_self and i == 0: continue
        t = p.name if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) else ('*' if p.kind == p.VAR_POSITIONAL else '**') + p.name
        if p.annotation is not p.empty: t += f": {p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation)}"
        if p.default is not p.empty: t += f"{' = ' if p.annotation is not p.empty else '='}{factories.get(p.name, repr(p.default))}"
        out.append(t)
    kw_only = [i for i, p in enumerate(sig.parameters.values()) if p.kind == p.KEYWORD_ONLY]
    if kw_only and not any(x.startswith('*') and not x.startswith('**') for x in out): out.insert(kw_only[0] - skip_self, '*')
    return out

def _call(head: str, params: list[str], tail: str = '') -> str:
    "`head(params)tail`, one parameter per line when it would not fit 100 characters."
    one = f"{head}({', '.join(params)}){tail}"
    return one if len(one) <= 100 else f"{head}(\n" + ''.join(f"    {p},\n" for p in params) + f"){tail}"

def signature_code(obj) -> str:
    """The symbol as its source declares it: `def f(a, b=1) -> T` for a function; for a class, `class C(Base)` and, when it
    (not a builtin base) defines how it is made, its `__init__` parameters."""
    if not inspect.isclass(obj):
        sig = inspect.signature(obj)
        ret = sig.return_annotation
        tail = '' if ret is inspect.Signature.empty else f" -> {ret if isinstance(ret, str) else inspect.formatannotation(ret)}"
        return _call(f"def {obj.__name__}", _params(sig), tail)
    bases = ', '.join(('nn.' if b.__module__.startswith('torch.nn') else '') + b.__name__ for b in obj.__bases__ if b is not object)
    head = f"class {obj.__name__}" + (f"({bases})" if bases else '')
    init = next((k.__init__ for k in obj.__mro__ if '__init__' in k.__dict__), None)
    if init is None or not inspect.isfunction(init): return head          # a builtin's __init__ (an exception, object)
    import dataclasses
    factories = {f.name: f"field(default_factory={f.default_factory.__name__})" if isinstance(f.default_factory, type)
                 else f"field(default_factory=lambda: {f.default_factory()!r})"
                 for f in (dataclasses.fields(obj) if dataclasses.is_dataclass(obj) else ()) if f.default_factory is not dataclasses.MISSING}
    params = _params(inspect.signature(init), skip_self=True, factories=factories)
    return head + ':\n    ' + _call('def __init__', ['self', *params]).replace('\n', '\n    ')

def show_doc_markdown(module: str, cell: dict) -> str:
    """The markdown of an executed `show_doc` cell: its title and docstring, with an anchor for the API index, and the
    symbol's real signature (`signature_code`) instead of nbdev's rendering (which shows a class as `def C(*args, **kwargs)`)."""
    name = re.match(r'show_doc\((\w+)', cell['source']).group(1)
    md = ''.join(next(o for o in cell['outputs'] if 'data' in o)['data']['text/markdown'])
    md = re.sub(r'^---\s*', '', md)
    md = re.sub(r'^\[source\]\(.*\)\{[^}]*\}\s*$', '', md, flags=re.M)
    head, _, rest = md.strip().partition('\n')                   # the anchor goes inside the symbol's section
    obj = getattr(importlib.import_module(f'hat_nb.{module}'), name)
    rest = re.sub(r'```python\n.*?```', lambda _: f"```python\n{signature_code(obj)}\n```", rest, count=1, flags=re.S)
    return f'{head}\n\n<span id="{anchor(module, name)}"></span>\n{rest}\n'

def constants_defined(source: str) -> list[str]:
    "Public names a cell assigns at top level (constants): they get an anchor, show_doc renders functions and classes."
    targets = re.findall(r'^((?:[A-Z][A-Za-z0-9_]*\s*,\s*)*[A-Z][A-Za-z0-9_]*)\s*(?::[^=\n]+)?=(?!=)', source, re.M)
    return [n.strip() for t in targets for n in t.split(',')]

def for_reading(nb: dict) -> dict:
    "The notebook as a reader sees it: show_doc outputs as markdown, no `#| hide` or `#| default_exp` cells, no `#|` directives."
    module, cells, held = module_of(nb), [], []
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'code' and src.startswith('show_doc('):
            cells.append({'cell_type': 'markdown', 'metadata': {}, 'source': show_doc_markdown(module, {**c, 'source': src})})
            continue
        cells += held; held = []                 # an exported cell's source comes after the signatures of what it defines
        lines = src.splitlines(keepends=True)
        if c['cell_type'] == 'code':
            if any(l.startswith(('#| hide', '#| default_exp')) for l in lines[:2]): continue
            if module and any(l.startswith('#| export') for l in lines) and (names := constants_defined(src)):
                spans = ''.join(f'<span id="{anchor(module, n)}"></span>' for n in names)
                cells.append({'cell_type': 'markdown', 'metadata': {}, 'source': spans})
            lines = [l for l in lines if not l.startswith('#|')]
            if module and any(l.startswith('#| export') for l in src.splitlines()[:2]):   # the source, folded: one click away
                held.append({**c, 'metadata': {**c.get('metadata', {}), 'tags': ['hide-input']}, 'source': ''.join(lines)})
                continue
        cells.append({**c, 'source': ''.join(lines)})
    cells += held
    return {**nb, 'cells': [{'id': f'doc-{i}', **c} for i, c in enumerate(cells)]}

def table_text(md: str) -> str:
    "A docstring line as the text of a markdown table cell: `<`, `>`, `&` escaped outside code spans, `|` escaped everywhere."
    parts = md.split('`')
    return '`'.join(html.escape(p, quote=False) if i % 2 == 0 else p for i, p in enumerate(parts)).replace('|', '\\|')

def api_index(notebooks: dict[str, str]) -> str:
    "The API page: per module, every name of its `__all__`, linked to its anchor in the notebook, with its docstring's first line."
    parts = ['# API index', '',
             'Every public symbol of `hat_nb`, by module, linked to its section in the notebook that defines, explains and tests it.', '']
    for stem, module in notebooks.items():
        mod = importlib.import_module(f'hat_nb.{module}')
        parts += [f'## `hat_nb.{module}` ({stem})', '', '| symbol | what it is |', '|:--|:--|']
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isroutine(obj): what = (inspect.getdoc(obj) or '').split('\n')[0]
            else: what = f'constant ({type(obj).__name__})'
            link = f'<a class="reference internal" href="{stem}.html#{anchor(module, name)}"><code>{name}</code></a>'
            parts.append(f'| {link} | {table_text(what)} |')
        parts.append('')
    return '\n'.join(parts)

def stage(src: Path):
    "Sources of the site in `src`: conf.py and CSS, index.md (the README and the table of contents), the notebooks, the API index, MathJax."
    shutil.copy(ROOT/'docs/conf.py', src/'conf.py')
    (src/'_static').mkdir(); shutil.copy(ROOT/'docs/hat_nb.css', src/'_static/hat_nb.css')
    nbs, modules = sorted((ROOT/'nbs').glob('[0-9]*.ipynb')), {}
    for nb in nbs:
        doc = with_show_docs(nb)
        if module := module_of(doc): modules[nb.stem] = module
        doc = for_reading(doc)
        (src/nb.name).write_text(json.dumps(doc))
    (src/'api.md').write_text(api_index(modules))
    readme = (ROOT/'README.md').read_text()
    (src/'docs').mkdir()
    for img in (ROOT/'docs').glob('*.png'): shutil.copy(img, src/'docs')     # the README's figures, at the same paths
    toc = '\n'.join(p.stem for p in nbs)
    (src/'index.md').write_text(f"{readme}\n\n```{{toctree}}\n:maxdepth: 1\n:caption: Notebooks\n\n{toc}\n```\n\n"
                                f"```{{toctree}}\n:maxdepth: 1\n:caption: Reference\n\napi\n```\n")
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
