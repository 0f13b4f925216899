"""The README's picture of `hat-nb serve`: the page in headless Chromium after a query and a click on one result.

    python tools/serve_screenshot.py INDEX --captions FILE --query "red heart" --pick 2 --out docs/serve.png
"""
import argparse, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]/'tests'))
from cdp import Browser
from hat_nb.serve import background_server

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('index'); p.add_argument('--captions', default=None); p.add_argument('--query', default='red heart')
    p.add_argument('--k', type=int, default=12); p.add_argument('--pick', type=int, default=1, help='the result clicked (1 = first)')
    p.add_argument('--out', default='docs/serve.png')
    a = p.parse_args(argv)
    with background_server(a.index, captions=a.captions) as url:
        b = Browser(Path(tempfile.mkdtemp())/'profile', width=1100, height=800)
        try:
            b.call('Page.navigate', url=url)
            b.wait("document.getElementById('about').textContent.includes('images')")
            b.js(f"document.getElementById('q').value = {a.query!r}; document.getElementById('k').value = '{a.k}';"
                 "document.getElementById('search').requestSubmit(); true")
            b.wait(f"document.querySelectorAll('#grid figure').length === {a.k} && "
                   "[...document.querySelectorAll('#grid img')].every(i => i.complete && i.naturalWidth > 0)")
            b.js(f"document.querySelectorAll('#grid figure')[{a.pick - 1}].click(); true")
            b.wait("document.querySelectorAll('#maps canvas[data-drawn]').length > 0")
            b.js("document.getElementById('capbtn').click(); true")
            b.wait("document.querySelectorAll('#dcaps li').length > 0 || document.getElementById('capbtn').hidden")
            b.screenshot(a.out)
            assert not b.errors(), b.errors()
            from PIL import Image
            Image.open(a.out).convert('RGB').quantize(256).save(a.out, optimize=True)   # a third of the bytes, same look
        finally:
            b.close()
    print(f'wrote {a.out}')

if __name__ == '__main__': main()
