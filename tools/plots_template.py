"""Write `.dvc/plots.html`, the page template `dvc plots show` fills (`.dvc/config`: `plots.html_template`), with Vega,
Vega-Lite and vega-embed inlined, so the curves render offline.

    python tools/plots_template.py            # tools/setup.sh runs it; a no-op when the template is current

DVC's default page loads these three scripts from a CDN, so without a network it is blank. The same versions DVC's renderer
names (dvc_render's `VegaRenderer.SCRIPTS`) are fetched once with `npm pack`, checksum verified, and cached beside the demo
data's tarball (`hat_nb.data.cache_dir()`); later runs are offline.
"""
import hashlib, shutil, subprocess, sys, tarfile, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT/'.dvc/plots.html'
PACKAGES = {   # npm package: (sha256 of its `npm pack` tarball, the script inside it)
    'vega@5.20.2': ('d77deab01d6104b1239228720721f93003e60797d2faced7ffdd759fa70f989d', 'package/build/vega.min.js'),
    'vega-lite@5.2.0': ('f64ca4745f043447ac86b67dc9e9592ec2b85ac8b8dafc35faf970f142463e4b', 'package/build/vega-lite.min.js'),
    'vega-embed@6.18.2': ('93aeee312e92077b0252ef026c0fe0ec8fa430c19825aeada6cd3a6804e68e1b', 'package/build/vega-embed.min.js'),
}
PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <title>DVC Plot</title>
    <meta charset="utf-8">
%s
    <style>
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""

def tarball(spec: str, sha256: str) -> Path:
    "The package's `npm pack` tarball from the cache, else fetched with npm; a checksum mismatch stops with the file removed."
    from hat_nb.data import cache_dir
    name, version = spec.rsplit('@', 1)
    tgz = cache_dir()/f'{name}-{version}.tgz'
    if not tgz.is_file():
        if not shutil.which('npm'): sys.exit(f"plots_template: {tgz} is not cached and npm is not installed to fetch {spec}")
        tgz.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run(['npm', 'pack', spec, '--silent', '--pack-destination', tmp], capture_output=True, text=True)
            if r.returncode: sys.exit(f"plots_template: `npm pack {spec}` failed: {r.stderr.strip()[-500:]}")
            shutil.move(Path(tmp)/tgz.name, tgz)
    if (h := hashlib.sha256(tgz.read_bytes()).hexdigest()) != sha256:
        tgz.unlink(); sys.exit(f"plots_template: {tgz}: checksum mismatch (got {h}); removed, run again to fetch it anew")
    return tgz

def page() -> str:
    "The template: DVC's page layout, each script inlined (DVC fills in only `{plot_divs}` and `{refresh_tag}`, by replacement)."
    scripts = []
    for spec, (sha, member) in PACKAGES.items():
        with tarfile.open(tarball(spec, sha)) as t: js = t.extractfile(member).read().decode()
        scripts.append(f'    <script>/* {spec} */\n{js}\n    </script>')
    return PAGE % '\n'.join(scripts)

if __name__ == '__main__':
    text = page()
    if not (OUT.is_file() and OUT.read_text() == text): OUT.write_text(text)
