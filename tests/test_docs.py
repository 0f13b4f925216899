"""The documentation: every public symbol has its rendered signature and a worked example; the site builds, links every
symbol from its API index, and in a real browser shows typeset equations, the attention figure, search results and code
that is never cut off."""
import html, importlib, inspect, json, re, shutil, subprocess, sys
import numpy as np, pytest
from PIL import Image
from conftest import ROOT, run

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
NOTEBOOKS = sorted(p.stem for p in (ROOT/'nbs').glob('[0-9]*.ipynb'))
pytestmark = pytest.mark.xdist_group('docs')    # one worker builds the site once for every test of it
MIN_EXAMPLES = 0.90                      # share of public symbols with an example cell and its committed output

def _src(c) -> str: return ''.join(c['source'])
def _exported(s: str) -> bool: return re.search(r'^#\|\s*export', s, re.M) is not None
def _defines(s: str, name: str) -> bool:
    return re.search(rf'^(?:def|class)\s+{name}\b|^(?:\w+\s*,\s*)*{name}\s*(?:,\s*\w+\s*)*(?::[^=\n]+)?=', s, re.M) is not None

def cells_of(nb: str) -> list:
    return json.loads((ROOT/f'nbs/{nb}.ipynb').read_text())['cells']

def public_symbols():
    "(notebook, module, name) of every name in the `__all__` of every module."
    for nb in NOTEBOOKS:
        if m := next((re.search(r'default_exp\s+(\S+)', _src(c)) for c in cells_of(nb) if 'default_exp' in _src(c)), None):
            for name in importlib.import_module(f'hat_nb.{m.group(1)}').__all__: yield nb, m.group(1), name

def has_example(cells: list, name: str) -> bool:
    """After the exported cell that defines `name`, the first visible code cell that uses it has an output: the example
    comes after the symbol's paragraph and code, before its tests (cells without output)."""
    d = next((i for i, c in enumerate(cells) if c['cell_type'] == 'code' and _exported(_src(c)) and _defines(_src(c), name)), None)
    if d is None: return False
    for c in cells[d + 1:]:
        s = _src(c)
        if c['cell_type'] != 'code' or _exported(s) or s.startswith('#| hide') or not re.search(rf'\b{name}\b', s): continue
        return bool(c.get('outputs'))
    return False

def test_every_public_symbol_has_an_example():
    syms, cells = list(public_symbols()), {nb: cells_of(nb) for nb in NOTEBOOKS}
    missing = [f'{nb}: {name}' for nb, _, name in syms if not has_example(cells[nb], name)]
    share = 1 - len(missing) / len(syms)
    print(f"{len(syms) - len(missing)} of {len(syms)} public symbols have an example ({share:.0%}); without one:", *missing, sep='\n  ')
    assert share >= MIN_EXAMPLES, f"only {share:.0%} of the public symbols have an example (at least {MIN_EXAMPLES:.0%}); without one: {missing}"

def without_paragraph(cells: list) -> list[str]:
    """Exported cells defining a public name with no markdown between them and the exported cell before: each public
    definition comes after a paragraph about it (private helpers may follow the public one they serve)."""
    out, said = [], True
    for c in cells:
        s = _src(c)
        if c['cell_type'] == 'markdown': said = True
        elif _exported(s):
            names = [a or b for a, b in re.findall(r'^(?:def|class) (\w+)|^(\w+)\s*(?::[^=\n]+)?=', s, re.M)]
            if [n for n in names if not n.startswith('_')] and not said: out.append(names[0])
            said = False
    return out

def test_every_public_definition_follows_a_paragraph():
    missing = {nb: m for nb in NOTEBOOKS if (m := without_paragraph(cells_of(nb)))}
    assert not missing, f'exported definitions without a paragraph before them: {missing}'
    code = lambda t: dict(cell_type='code', source=f'#| export\n{t}\n')
    assert without_paragraph([dict(cell_type='markdown', source='f'), code('def f(): pass'), code('def _g(): pass'), code('def h(): pass')]) == ['h']

def test_has_example_sees_a_missing_one():
    "The example check fails for a symbol whose first use after its definition is a test cell without output."
    define, test = dict(cell_type='code', source='#| export\ndef f(x): return x\n', outputs=[]), dict(cell_type='code', source='assert f(1) == 1\n', outputs=[])
    example = dict(cell_type='code', source='f(2)\n', outputs=[{'output_type': 'execute_result'}])
    assert not has_example([define, test, example], 'f')
    assert has_example([define, example, test], 'f')

@pytest.fixture(scope='session')   # (session: the slow-first order splits a module's tests)
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')
    run(sys.executable, 'tools/build_docs.py', '--out', out)
    return out

@pytest.mark.slow
def test_site_has_readme_home_and_every_notebook(site):
    home = re.sub(r'<[^>]+>', '', (site/'index.html').read_text()).replace('&amp;', '&')
    assert 'bash tools/setup.sh --tests && .venv/bin/python -m pytest' in home and 'dvc repro' in home
    for nb in NOTEBOOKS: assert (site/f'{nb}.html').is_file(), nb
    assert (site/'_static/mathjax/tex-mml-chtml.js').is_file()           # math is served by the site, not a CDN
    assert 'cdn.jsdelivr' not in (site/'02_align.html').read_text()
    assert '#| export' not in (site/'02_align.html').read_text()         # nbdev directives are not shown to readers
    assert 'fastcore.test' not in (site/'02_align.html').read_text()     # nor the hidden cells

def signature_after(page: str, anchor: str, name: str, kind: str = '(def|class)') -> bool:
    "After the symbol's anchor, the page shows its signature as highlighted Python (`def name(` or `class name`, as `kind` says)."
    i = page.find(f'id="{anchor}"')
    if i < 0: return False
    code = re.search(r'<div class="highlight-python[^"]*"><div class="highlight"><pre>(.*?)</pre>', page[i:i + 8000], re.S)
    return code is not None and re.search(rf'\b{kind} {name}\b', html.unescape(re.sub(r'<[^>]+>', '', code.group(1)))) is not None

def text_after(page: str, anchor: str) -> str:
    "The text a reader sees in the 8000 characters of HTML after `anchor`, whitespace collapsed."
    i = page.find(f'id="{anchor}"')
    return ' '.join(html.unescape(re.sub(r'<[^>]+>', '', page[i:i + 8000])).split())

def reading(t: str) -> str:
    "Text without markdown's marks and Sphinx's typographic quotes and dashes, whitespace collapsed: docstring and page compare."
    t = re.sub(r'[`*_\\]', '', t).translate(str.maketrans({'’': "'", '‘': "'", '“': '"', '”': '"', '–': '--', '—': '---', '…': '...'}))
    return ' '.join(t.split())

@pytest.mark.slow
def test_every_public_function_and_class_has_its_signature_rendered(site):
    """nbdev's show_doc, run by its processors in the build, renders each exported function's and class's docstring, under
    its real signature (a class as `class C(Base)`, never nbdev's `def C(*args, **kwargs)`)."""
    missing, n = [], 0
    for nb, module, name in public_symbols():
        obj = getattr(importlib.import_module(f'hat_nb.{module}'), name)
        if not (inspect.isclass(obj) or inspect.isroutine(obj)): continue
        n += 1
        page = (site/f'{nb}.html').read_text()
        if not signature_after(page, f'api-{module}-{name}', name, 'class' if inspect.isclass(obj) else 'def'): missing.append(f'{nb}: {name}')
        elif not (doc := inspect.getdoc(obj)): missing.append(f'{nb}: {name} (no docstring)')
        elif ' '.join(reading(doc).split()[:6]) not in reading(text_after(page, f'api-{module}-{name}')):
            missing.append(f'{nb}: {name} (docstring not shown)')
    print(f"{n - len(missing)} of {n} public functions and classes have their signature rendered; without:", *missing, sep='\n  ')
    assert not missing, missing

@pytest.mark.slow
def test_api_index_links_every_public_symbol(site):
    api = (site/'api.html').read_text()
    links = set(re.findall(r'href="(\d\d[a-z]?_\w+)\.html#(api-[\w-]+)"', api))
    pages = {nb: (site/f'{nb}.html').read_text() for nb in NOTEBOOKS}
    for nb, module, name in public_symbols():
        assert (nb, f'api-{module}-{name}') in links, f'{name} is not in the API index'
        assert f'id="api-{module}-{name}"' in pages[nb], f'the API index links {name} to {nb}.html, which has no such anchor'

def chromium(*args, tmp_path):
    r = subprocess.run([CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', f'--user-data-dir={tmp_path}/profile',
                        '--virtual-time-budget=20000', *map(str, args)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout

needs_chromium = pytest.mark.skipif(not CHROMIUM, reason='needs the chromium package (tools/setup.sh --tests installs it where apt-get runs as root)')

@pytest.mark.slow
@needs_chromium
def test_alignment_page_in_chromium(site, tmp_path):
    page = site/'02_align.html'
    dom = chromium('--dump-dom', page.as_uri(), tmp_path=tmp_path)
    assert dom.count('<mjx-container') >= 10, 'equations were not typeset by MathJax'
    assert '<mjx-merror' not in dom and 'Math input error' not in dom
    imgs = [s for s in re.findall(r'<img[^>]*src="([^"]+)"', dom) if s.startswith('_images/')]
    assert len(imgs) == 1, imgs                                                # the attention figure
    fig = np.array(Image.open(site/imgs[0]).convert('RGB'))
    assert fig.shape[0] > 300 and fig.shape[1] > 250
    shot = tmp_path/'shot.png'
    chromium('--window-size=1280,40000', f'--screenshot={shot}', page.as_uri(), tmp_path=tmp_path)      # the whole page
    px = np.array(Image.open(shot).convert('RGB'))
    row = fig[fig.shape[0] // 2].tobytes()                                     # a row of pixels through the middle level's maps
    hits = [y for y in range(px.shape[0]) if px[y].tobytes().find(row) % 3 == 0]
    assert hits, 'the attention figure is not drawn on the screen'

# Runs in the page after it has loaded: every code block or output whose text is wider than its box, unless the box scrolls.
CUT_OFF = """<script>window.addEventListener('load', () => setTimeout(() => {
  const cut = [];
  for (const el of document.querySelectorAll('div.cell pre, div.highlight pre, div.cell_output')) {
    const ox = getComputedStyle(el).overflowX;
    const spills = el.scrollWidth > el.clientWidth + 1 && !['auto', 'scroll'].includes(ox);      // clipped or running out
    const outside = el.getBoundingClientRect().right > document.documentElement.clientWidth + 1;   // past the window's edge
    if (spills || outside) cut.push(el.textContent.slice(0, 80));
  }
  const pres = document.querySelectorAll('div.cell pre, div.highlight pre').length;
  const shown = [];                     // symbols whose signature is on the screen: highlighted `def`/`class` after the anchor
  for (const a of document.querySelectorAll('span[id^="api-"]')) {
    const sig = a.closest('p').nextElementSibling;
    if (sig && sig.matches('div.highlight-python') && sig.getBoundingClientRect().height > 0 && sig.querySelector('span.k')) shown.push(a.id);
  }
  const outline = document.querySelectorAll('.toc-tree a').length;
  const twice = [];                     // symbols whose definition is on the screen more than once (the source is folded)
  const visible = [...document.querySelectorAll('div.highlight pre')].filter(p => p.getBoundingClientRect().height > 0);
  for (const a of document.querySelectorAll('span[id^="api-"]')) {
    const name = a.id.split('-').slice(2).join('-');
    const re = new RegExp('\\b(def|class) ' + name + '\\b');
    if (visible.filter(p => re.test(p.textContent)).length > 1) twice.push(a.id);
  }
  const out = document.createElement('pre'); out.id = 'overflow-check';
  out.textContent = JSON.stringify({pres, cut, shown, outline, twice}); document.body.appendChild(out);
}, 500));</script>"""

@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize('width', [1400, 900])
def test_pages_in_chromium_cut_no_code_and_show_signatures(site, tmp_path, width):
    """On a wide and a narrow window, no code cell's or output's text runs past its box: it wraps, or its box scrolls. Every
    public function's and class's signature is on the screen, highlighted, once (its source folded), and the page outline
    lists the symbols."""
    for nb in ('03_model', '07_train', '10_pipeline'):
        probe = site/f'_probe_{nb}.html'
        probe.write_text((site/f'{nb}.html').read_text().replace('</body>', CUT_OFF + '</body>'))
        dom = chromium(f'--window-size={width},1000', '--dump-dom', probe.as_uri(), tmp_path=tmp_path)
        probe.unlink()
        res = json.loads(re.search(r'<pre id="overflow-check">(.*?)</pre>', dom, re.S).group(1).replace('&quot;', '"').replace('&amp;', '&').replace('&lt;', '<').replace('&gt;', '>'))
        assert res['pres'] > 20, res
        assert not res['cut'], f"{nb} at {width} px: cut off: {res['cut']}"
        callables = {f'api-{m}-{n}' for b, m, n in public_symbols() if b == nb
                     and (inspect.isclass(o := getattr(importlib.import_module(f'hat_nb.{m}'), n)) or inspect.isroutine(o))}
        assert callables and callables <= set(res['shown']), f"{nb}: signatures not shown: {sorted(callables - set(res['shown']))}"
        assert res['outline'] >= len(callables), f"{nb}: the page outline has {res['outline']} entries"
        assert not res['twice'], f"{nb}: shown more than once: {res['twice']}"

@pytest.mark.slow
@needs_chromium
def test_search_finds_a_symbol_in_chromium(site, tmp_path):
    dom = chromium('--dump-dom', (site/'search.html').as_uri() + '?q=EpochOrder', tmp_path=tmp_path)
    results = re.findall(r'<li[^>]*>\s*<a[^>]*href="([^"]+)"', dom.split('id="search-results"', 1)[-1])
    assert any(r.startswith('07_train.html') for r in results), results[:10]
