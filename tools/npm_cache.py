"""One npm package's tarball, fetched once with `npm pack`, checksum verified, cached in `hat_nb.files.cache_dir()`:
the tools' offline copies of web assets (the docs' MathJax, the plots' Vega)."""
import hashlib, shutil, subprocess, sys, tempfile
from pathlib import Path

def npm_tarball(spec: str, sha256: str, tool: str) -> Path:
    "The tarball of `spec` ('name@version') from the cache, else `npm pack`; a checksum mismatch stops `tool` with the file removed."
    from hat_nb.files import cache_dir
    name, version = spec.rsplit('@', 1)
    tgz = cache_dir()/f'{name}-{version}.tgz'
    if not tgz.is_file():
        if not shutil.which('npm'): sys.exit(f"{tool}: {tgz} is not cached and npm is not installed to fetch {spec}")
        tgz.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run(['npm', 'pack', spec, '--silent', '--pack-destination', tmp], capture_output=True, text=True)
            if r.returncode: sys.exit(f"{tool}: `npm pack {spec}` failed: {r.stderr.strip()[-500:]}")
            shutil.move(Path(tmp)/tgz.name, tgz)
    if (h := hashlib.sha256(tgz.read_bytes()).hexdigest()) != sha256:
        tgz.unlink(); sys.exit(f"{tool}: {tgz}: checksum mismatch (got {h}); removed, run again to fetch it anew")
    return tgz
