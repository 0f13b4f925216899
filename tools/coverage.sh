#!/usr/bin/env bash
# Line and branch coverage of hat_nb/ over the test suite, every Python process it starts included (pytest's workers,
# pipeline stages, notebook kernels, torchrun workers; settings in pyproject.toml). Arguments go to pytest (e.g. -m "not
# slow"). Prints the report per module; htmlcov/index.html shows each line. About 1.5x the suite's time.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .coverage .coverage.* htmlcov
export COVERAGE_FILE=$PWD/.coverage
status=0
.venv/bin/python -m coverage run -m pytest "$@" || status=$?
.venv/bin/python -m coverage combine -q
.venv/bin/python -m coverage html -q
.venv/bin/python -m coverage report --precision 2
.venv/bin/python -m coverage json -q -o .coverage.json
.venv/bin/python -c "import json; t = json.load(open('.coverage.json'))['totals']
print(f\"lines {100 * t['covered_lines'] / t['num_statements']:.2f} % ({t['covered_lines']:,} of {t['num_statements']:,}), \"
      f\"branches {100 * t['covered_branches'] / t['num_branches']:.2f} % ({t['covered_branches']:,} of {t['num_branches']:,})\")"
exit $status
