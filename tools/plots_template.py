"""Write `.dvc/plots.html`, the page template `dvc plots show` fills (`.dvc/config`: `plots.html_template`), with Vega,
Vega-Lite and vega-embed inlined, so the curves render offline.

    python tools/plots_template.py            # tools/setup.sh runs it; a no-op when the template is current

DVC's default page loads these three scripts from a CDN, so without a network it is blank. The same versions DVC's renderer
names (dvc_render's `VegaRenderer.SCRIPTS`) are fetched once with `npm pack`, checksum verified, and cached beside the demo
data's tarball (`hat_nb.files.cache_dir()`); later runs are offline.
"""
import tarfile
from pathlib import Path
from npm_cache import npm_tarball

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

def page() -> str:
    "The template: DVC's page layout, each script inlined (DVC fills in only `{plot_divs}` and `{refresh_tag}`, by replacement)."
    scripts = []
    for spec, (sha, member) in PACKAGES.items():
        with tarfile.open(npm_tarball(spec, sha, 'plots_template')) as t: js = t.extractfile(member).read().decode()
        scripts.append(f'    <script>/* {spec} */\n{js}\n    </script>')
    return PAGE % '\n'.join(scripts)

if __name__ == '__main__':
    text = page()
    if not (OUT.is_file() and OUT.read_text() == text): OUT.write_text(text)
