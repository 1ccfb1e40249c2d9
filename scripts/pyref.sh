#!/usr/bin/env bash
# The Python references the tests use: LibRaw (through rawpy) for the DNGs
# they write, colour-science for the colour of a developed chart; in a
# virtual environment under target/pyref. Idempotent; the tests find it
# there (or at $ISP_REF_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="target/pyref"
if "$venv/bin/python" -c "import rawpy, numpy, colour" 2>/dev/null; then
  exit 0
fi
if ! python3 -c "import venv, ensurepip" 2>/dev/null; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r scripts/requirements-reference.txt
"$venv/bin/python" -c "import rawpy; print('reference python: rawpy', rawpy.__version__, 'LibRaw', rawpy.libraw_version)"
