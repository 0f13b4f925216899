"""Render README.md from nbs/index.ipynb: markdown cells verbatim, visible code cells as python blocks.

Usage: python tools/render_readme.py [--check]   (--check exits 1 when README.md is out of date)
"""
import json, sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]

def render(nb_path=root/'nbs/index.ipynb') -> str:
    out = []
    for c in json.loads(nb_path.read_text())['cells']:
        src = ''.join(c['source']).strip()
        if not src or src.startswith('#| hide') or src.startswith('#|hide'): continue
        if c['cell_type'] == 'markdown': out.append(src)
        elif c['cell_type'] == 'code': out.append(f"```python\n{src}\n```")
    return '\n\n'.join(out) + '\n\n<!-- Generated from nbs/index.ipynb by tools/render_readme.py: edit the notebook, not this file. -->\n'

if __name__ == '__main__':
    text, readme = render(), root/'README.md'
    if '--check' in sys.argv:
        ok = readme.is_file() and readme.read_text() == text
        print('README.md is up to date' if ok else 'README.md is out of date: run python tools/render_readme.py')
        sys.exit(0 if ok else 1)
    readme.write_text(text)
