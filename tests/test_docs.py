"The documentation site: it builds, and in a real browser its alignment page shows typeset equations and the attention figure."
import re, shutil, subprocess, sys
import numpy as np, pytest
from PIL import Image
from conftest import ROOT, run

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
NOTEBOOKS = sorted(p.stem for p in (ROOT/'nbs').glob('[0-9]*.ipynb'))

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')
    run(sys.executable, 'tools/build_docs.py', '--out', out)
    return out

def test_site_has_readme_home_and_every_notebook(site):
    home = re.sub(r'<[^>]+>', '', (site/'index.html').read_text()).replace('&amp;', '&')
    assert 'bash tools/setup.sh && .venv/bin/python -m pytest' in home and 'dvc repro' in home
    for nb in NOTEBOOKS: assert (site/f'{nb}.html').is_file(), nb
    assert (site/'_static/mathjax/tex-mml-chtml.js').is_file()           # math is served by the site, not a CDN
    assert 'cdn.jsdelivr' not in (site/'02_align.html').read_text()
    assert '#| export' not in (site/'02_align.html').read_text()         # nbdev directives are not shown to readers

def chromium(*args, tmp_path):
    r = subprocess.run([CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', f'--user-data-dir={tmp_path}/profile',
                        '--virtual-time-budget=20000', *map(str, args)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout

@pytest.mark.skipif(not CHROMIUM, reason='needs the chromium package (tools/setup.sh installs it where apt-get runs as root)')
def test_alignment_page_in_chromium(site, tmp_path):
    page = site/'02_align.html'
    dom = chromium('--dump-dom', page.as_uri(), tmp_path=tmp_path)
    assert dom.count('<mjx-container') >= 10, 'equations were not typeset by MathJax'
    assert '<mjx-merror' not in dom and 'Math input error' not in dom
    imgs = re.findall(r'<img[^>]*src="([^"]+)"', dom)
    assert len(imgs) == 1, imgs                                                # the attention figure
    fig = np.array(Image.open(site/imgs[0]).convert('RGB'))
    assert fig.shape[0] > 300 and fig.shape[1] > 250
    shot = tmp_path/'shot.png'
    chromium('--window-size=1280,32000', f'--screenshot={shot}', page.as_uri(), tmp_path=tmp_path)      # the whole page
    px = np.array(Image.open(shot).convert('RGB'))
    row = fig[fig.shape[0] // 2].tobytes()                                     # a row of pixels through the middle level's maps
    hits = [y for y in range(px.shape[0]) if px[y].tobytes().find(row) % 3 == 0]
    assert hits, 'the attention figure is not drawn on the screen'
