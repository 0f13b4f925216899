# Sphinx + MyST-NB configuration of the documentation site; built by `python tools/build_docs.py` (see its docstring).
project = 'hat_nb'
author = 'hat_nb contributors'
copyright = '2026 onwards, hat_nb contributors'
extensions = ['myst_nb']
nb_execution_mode = 'off'                       # the notebooks' committed outputs are the documentation's
myst_enable_extensions = ['dollarmath', 'amsmath']
myst_heading_anchors = 3
exclude_patterns = ['_build', '**.ipynb_checkpoints']
suppress_warnings = ['myst.header', 'misc.highlighting_failure']
html_theme = 'furo'                             # search page, per-page outline, light and dark
html_title = 'hat_nb'
html_static_path = ['_static']
html_css_files = ['hat_nb.css']                 # code and outputs wrap instead of running off the column
mathjax_path = 'mathjax/tex-mml-chtml.js'       # served by the site itself (npm package `mathjax`), no CDN
