"tools/setup.sh: a failed install stops setup with the installer's message and a non-zero exit (nothing is hidden by the output filter)."
import shutil, sys
from pathlib import Path
import pytest
from conftest import ROOT, run

pytestmark = pytest.mark.slow

@pytest.mark.parametrize('installer', ['uv', 'pip'])
def test_setup_fails_loudly_on_a_broken_install(tmp_path, installer):
    for f in ('tools/setup.sh', 'requirements.txt', 'constraints.txt', 'settings.ini', 'setup.py'):
        (tmp_path/f).parent.mkdir(exist_ok=True); shutil.copy(ROOT/f, tmp_path/f)
    with open(tmp_path/'requirements.txt', 'a') as f: f.write('./no-such-package-dir\n')     # unsatisfiable, found before any download
    r = run('bash', 'tools/setup.sh', cwd=tmp_path, check=False, env={'PATH': '/usr/bin:/bin', 'HOME': str(Path.home()), 'PYTHON': sys.executable, 'HAT_NB_INSTALLER': installer}, timeout=600)
    assert r.returncode == 1, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert 'no-such-package-dir' in r.stderr and f'{installer} install -c constraints.txt -r requirements.txt failed' in r.stderr, r.stderr[-2000:]
    assert not (tmp_path/'.venv/.hat_nb-installed').exists() and not (tmp_path/'data').exists()
