#!/usr/bin/env bash
# Create .venv with every pinned dependency (constraints.txt), install hat_nb editable, build the emoji demo data.
# --tests: also the two Debian packages only the test suite uses (Chromium for the pages, qemu-user for the cross-CPU
# numerics check), where apt-get runs as root. Idempotent: a second run with unchanged requirements only re-checks the
# demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=0
for arg in "$@"; do
  case "$arg" in
    --tests) tests=1 ;;
    *) echo "hat_nb setup: unknown argument '$arg' (tools/setup.sh [--tests])" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
stamp=.venv/.hat_nb-installed
want=$(cat requirements.txt constraints.txt settings.ini setup.py | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  pip="./.venv/bin/python -m pip --disable-pip-version-check"
  # uv installs the same pinned set about 3x faster than pip (fresh clone, empty caches, whole setup: 60 s vs 191 s); uv
  # itself is pinned in constraints.txt and installed with pip. HAT_NB_INSTALLER=pip installs everything with pip instead.
  installer=${HAT_NB_INSTALLER:-uv}
  # every failed install stops setup with the installer's messages and a non-zero exit (shown less one known notice of
  # the indexes)
  install_with() {
    local name=$1 cmd=$2; shift 2
    if ! $cmd "$@" > .venv/install.log 2>&1; then
      grep -v "is ignored: it is neither" .venv/install.log >&2 || true
      echo "hat_nb setup: $name install $* failed ($name's messages above; full log: .venv/install.log)" >&2
      exit 1
    fi
    grep -v "is ignored: it is neither" .venv/install.log || true
  }
  case "$installer" in
    uv) install_with pip "$pip install -q" -c constraints.txt uv
        # --compile-bytecode: pip writes .pyc files at install time, uv only when asked. Without them every Python
        # process compiles what it imports (where PYTHONDONTWRITEBYTECODE is set, every time): 9 s -> 4 s for `import hat_nb.train`
        inst="./.venv/bin/uv pip install --python .venv/bin/python --quiet --compile-bytecode" ;;
    pip) inst="$pip install -q" ;;
    *) echo "hat_nb setup: HAT_NB_INSTALLER must be uv or pip, not '$installer'" >&2; exit 2 ;;
  esac
  install() { install_with "$installer" "$inst" "$@"; }
  echo "hat_nb setup: installing pinned dependencies into .venv with $installer (first run takes a few minutes)"
  install -c constraints.txt -r requirements.txt
  install --no-deps --no-build-isolation -e .
  $pip check
  ./.venv/bin/dvc config --local core.analytics false >/dev/null 2>&1 || true
  echo "$want" > "$stamp"
fi
# --tests: headless Chromium (Debian package) for the page tests; where apt-get cannot run, those tests are skipped
if [ "$tests" = 1 ] && ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "hat_nb setup: installing chromium (Debian package) for the documentation test"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >/dev/null 2>&1 \
    || echo "hat_nb setup: chromium could not be installed; tests/test_docs.py will skip its browser check"
fi
# --tests: Debian's qemu-user runs the venv's Python as other x86-64 CPUs (AMD EPYC, Intel Haswell) for the cross-CPU numerics
# test; where apt-get cannot run, that one test is skipped and says why
if [ "$tests" = 1 ] && ! command -v qemu-x86_64 >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] \
   && [ "$(uname -m)" = x86_64 ]; then
  echo "hat_nb setup: installing qemu-user (Debian package) for the cross-CPU numerics test"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user; } >/dev/null 2>&1 \
    || echo "hat_nb setup: qemu-user could not be installed; tests/test_numerics.py will skip its cross-CPU check"
fi
# demo data (emoji-datasource-google via npm pack, checksum verified); no-op when already built
./.venv/bin/hat-nb build-emoji data/emoji --quiet
# `dvc plots show`'s page with Vega inlined (npm pack, checksum verified, cached), so the curves render offline
./.venv/bin/python tools/plots_template.py
# a placeholder folder (data/<name>/GET_THE_DATA.md, ignored by DVC) for each catalog dataset without data, so that
# `dvc repro` of a paper dataset reaches its stage, which says where to get the data
./.venv/bin/python -c "from hat_nb.pipeline import write_data_placeholders; write_data_placeholders()"
