#!/usr/bin/env bash
# Create or refresh the project's virtual environment. Called by the Makefile when the stamp
# keyed on the pinned files is missing: `make test` and `make demo` both do it by themselves.
#   usage: scripts/setup_env.sh PYTHON VENV STAMP
set -euo pipefail
PYTHON="$1"; VENV="$2"; STAMP="$3"

die() { echo "setup_env: error: $*" >&2; exit 1; }
# pip warns once per missing local index folder of this machine's pip config; keep its real output.
pip_install() {
  local log status=0
  log="$(mktemp)"
  "$VENV/bin/python" -m pip install --quiet "$@" >"$log" 2>&1 || status=$?
  grep -v "is ignored: it is neither" "$log" || true
  rm -f "$log"
  return "$status"
}

command -v "$PYTHON" >/dev/null 2>&1 \
  || die "'$PYTHON' was not found on PATH. This project needs Python 3.11: install it, or run make PYTHON=/path/to/python3.11"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || die "'$PYTHON' is Python $("$PYTHON" -c 'import platform; print(platform.python_version())'), this project needs Python 3.11 (make PYTHON=/path/to/python3.11)"

INDEX_URL="${PIP_INDEX_URL:-https://pypi.org/simple}"
"$PYTHON" - "$INDEX_URL" <<'PY' || exit 1
import sys, urllib.request
url = sys.argv[1].rstrip("/") + "/pip/"
try:
    urllib.request.urlopen(url, timeout=20).read(1)
except Exception as exc:
    sys.exit(f"setup_env: error: the package registry {sys.argv[1]} cannot be reached ({exc}); "
             "the environment needs it to install the pinned packages")
PY

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "setup_env: creating $VENV with $PYTHON"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  touch "$VENV/.ddw-created"
fi
requirements=(-r requirements.txt -r projects/DDWLab/requirements.txt -r requirements-dev.txt)
if [ ! -f "$VENV/.ddw-created" ] && "$VENV/bin/python" -c 'import torch' >/dev/null 2>&1; then
  # A user's own environment (make VENV=...): its torch, and a Detectron2 built against it, stay.
  kept="$(mktemp)"
  grep -vE '^(torch|torchvision)==' requirements.txt > "$kept"
  requirements=(-r "$kept" -r projects/DDWLab/requirements.txt -r requirements-dev.txt)
  echo "setup_env: $VENV has its own torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'); keeping it"
fi
echo "setup_env: installing pinned requirements into $VENV"
pip_install "${requirements[@]}" || die "the pinned requirements did not install into $VENV (see pip's output above)"
"$VENV/bin/python" scripts/install_detectron2.py
pip_install --no-deps --no-build-isolation -e . || die "ddw_detectron did not install into $VENV"
# The lab (projects/DDWLab): make demo, compare, bench and device-check import it.
pip_install --no-deps --no-build-isolation -e projects/DDWLab || die "ddw_lab did not install into $VENV"
"$VENV/bin/python" -c 'import ddw_detectron, ddw_lab' || die "ddw_detectron did not install into $VENV"
rm -f "$VENV"/.ddw-env-*
touch "$STAMP"
echo "setup_env: $VENV is ready"
