"""Render README.md from nbs/index.ipynb: markdown cells verbatim, visible code cells as python blocks.

Usage: python tools/render_readme.py [--check]   (--check exits 1 when README.md is out of date)
       python tools/render_readme.py --demo-results reports/results.md
           (after a demo run: copies its printed demo table into
            nbs/index.ipynb between the demo-results markers, then renders README.md)
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

START, END = '<!-- demo-results:start -->', '<!-- demo-results:end -->'

def demo_results(results_md: Path, seeds_csv=root/'pipelines/demo_seeds.csv') -> str:
    "The demo section of a report's results.md (as the run printed it; its last row is the spread over seeds)."
    text = Path(results_md).read_text()
    sec = text.split('## emoji test (demo)', 1)[1].split('\n## ', 1)[0].strip()
    return (f"{sec}\n\nPer seed: `{seeds_csv.relative_to(root)}`. With pinned CPU numerics, these numbers on any x86-64 CPU "
            "(`10_pipeline`).")

def set_demo_results(results_md, nb_path=root/'nbs/index.ipynb'):
    nb = json.loads(nb_path.read_text())
    for c in nb['cells']:
        s = ''.join(c['source'])
        if START in s:
            s = s[:s.index(START) + len(START)] + '\n' + demo_results(results_md) + '\n' + s[s.index(END):]
            lines = s.split('\n'); c['source'] = [x + '\n' for x in lines[:-1]] + [lines[-1]]
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

if __name__ == '__main__':
    if '--demo-results' in sys.argv: set_demo_results(sys.argv[sys.argv.index('--demo-results') + 1])
    text, readme = render(), root/'README.md'
    if '--check' in sys.argv:
        ok = readme.is_file() and readme.read_text() == text
        print('README.md is up to date' if ok else 'README.md is out of date: run python tools/render_readme.py')
        sys.exit(0 if ok else 1)
    readme.write_text(text)
