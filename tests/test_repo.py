"Repository consistency: notebooks are the source, exported library and README are in sync, notebooks' inline tests pass."
import sys
from pathlib import Path
import pytest
from conftest import ROOT, run

BIN = Path(sys.executable).parent
NBS = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb'))

@pytest.mark.slow
@pytest.mark.parametrize('nb', NBS)
def test_notebook(nb):
    "Each notebook runs top to bottom (its inline tests, the `slow` ones included) and reproduces its committed outputs."
    run(sys.executable, 'tools/run_notebooks.py', '--check', f'nbs/{nb}')

@pytest.mark.slow
def test_nbdev_test_passes():
    """nbdev's own runner, as a user of any nbdev project runs it: several notebooks per process, the cells flagged in
    settings.ini's `tst_flags` skipped (`slow`, and `triton`: cells that need triton imported with its interpreter on) and
    those marked `eval: false`. Run on the notebooks that have such cells: every notebook's cells already run in
    `test_notebook`; what nbdev's runner adds is skipping these."""
    import re
    flagged = [nb for nb in NBS if re.search(r'#\|\s*(slow|triton|notest|eval:\s*false)\b', (ROOT/'nbs'/nb).read_text())]
    assert len(flagged) >= 3, flagged
    r = run(BIN/'nbdev_test', '--file_re', '^(' + '|'.join(map(re.escape, flagged)) + ')$', check=False, timeout=900)
    assert r.returncode == 0 and 'Success.' in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]

def test_notebooks_follow_imports():
    "A notebook imports only earlier notebooks' modules, and no private name of another module."
    import re
    order = {p.stem.split('_', 1)[1]: i for i, p in enumerate(sorted((ROOT/'nbs').glob('[0-9]*.ipynb')))}
    for mod, i in order.items():
        src = (ROOT/'hat_nb'/f'{mod}.py').read_text()
        for used, names in re.findall(r'^\s*from (?:\.|hat_nb\.)(\w+) import (\([^)]*\)|[^\n]+)', src, re.M):
            names = [n for n in re.split(r'[(),\s]+', names) if n]
            assert names and order[used] < i, f"hat_nb.{mod} imports the later hat_nb.{used}"
            assert not [n for n in names if n.startswith('_')], f"hat_nb.{mod} imports a private name of hat_nb.{used}: {names}"

def test_export_and_clean_in_sync(tmp_path):
    "nbdev_export and nbdev_clean, run on a copy of the notebooks and the package, change no file of either."
    import shutil
    for d in ('nbs', 'hat_nb'): shutil.copytree(ROOT/d, tmp_path/d, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints'))
    shutil.copy(ROOT/'settings.ini', tmp_path)
    run(BIN/'nbdev_export', cwd=tmp_path); run(BIN/'nbdev_clean', cwd=tmp_path)
    files = lambda root: {p.relative_to(root): p.read_bytes() for d in ('nbs', 'hat_nb') for p in sorted((root/d).rglob('*'))
                          if p.is_file() and '__pycache__' not in p.parts and '.ipynb_checkpoints' not in p.parts}
    ours, theirs = files(ROOT), files(tmp_path)
    changed = sorted(str(f) for f in ours.keys() | theirs.keys() if ours.get(f) != theirs.get(f))
    assert not changed, f"nbdev_export/nbdev_clean change {changed}: run them and commit"

def test_lint():
    """ruff, as configured in pyproject.toml (lines of at most 120 characters, code that cannot run), finds nothing in the
    notebooks or the exported package, and the notebooks' code is formatted as `ruff format nbs` writes it. nbdev writes
    `__all__` wrapped at 120 after its 10-character `__all__ = `: that generated line is not ours to wrap."""
    import json
    r = run(BIN/'ruff', 'check', '--output-format', 'json', 'nbs', 'hat_nb', check=False)
    line = lambda f: Path(f['filename']).read_text().split('\n')[f['location']['row'] - 1]
    found = [f"{f['filename']} cell {f.get('cell')} line {f['location']['row']}: {f['code']} {f['message']}"
             for f in json.loads(r.stdout) if not line(f).startswith('__all__ = [')]
    assert not found, '\n'.join(found)
    r = run(BIN/'ruff', 'format', '--check', 'nbs', check=False)
    assert r.returncode == 0, f"not formatted (run `ruff format nbs`, then nbdev_export):\n{r.stdout}{r.stderr}"

def test_readme_rendered_from_index():
    run(sys.executable, 'tools/render_readme.py', '--check')

def test_readme_starts_with_two_commands():
    lines = (ROOT/'README.md').read_text().split('```bash\n', 1)[1].split('```')[0].strip().split('\n')
    assert len(lines) == 2 and 'dvc repro' in lines[0] and 'pytest' in lines[1], lines
    assert lines[1] in (ROOT/'.ci/run').read_text()

def test_xdist_groups_run_on_one_worker(tmp_path):
    "Tests marked `xdist_group` (the shared demo run, the docs site) go to one worker, so their shared fixture is built once."
    (tmp_path/'pytest.ini').write_text('[pytest]\n')
    (tmp_path/'test_g.py').write_text("import os, pytest\n"
        "@pytest.mark.xdist_group('g')\ndef test_a(): print('worker', os.environ['PYTEST_XDIST_WORKER'])\n"
        "@pytest.mark.xdist_group('g')\ndef test_b(): print('worker', os.environ['PYTEST_XDIST_WORKER'])\n")
    out = run(sys.executable, '-m', 'pytest', '-n', '2', '--dist', 'loadgroup', '-rA', '-p', 'no:cacheprovider', cwd=tmp_path).stdout
    workers = {l.split()[-1] for l in out.splitlines() if l.startswith('worker ')}
    assert len(workers) == 1 and out.count('PASSED') >= 2, out[-2000:]
