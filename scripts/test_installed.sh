#!/usr/bin/env bash
# The library's tests against its wheel installed apart from the clone (make test-installed):
# builds the wheels of ddw_detectron and of the lab (projects/DDWLab, which provides the
# generated datasets the tests train on) from the files git tracks, installs them into a fresh
# folder, copies tests/ next to it, and runs every test file that needs nothing of the clone
# (not the scripts, the Makefile, the README, the projects or the lab's own tests).
#   usage: scripts/test_installed.sh PYTHON [pytest options]
set -euo pipefail
PY="$1"; shift
[[ "$PY" == */* ]] && PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # survives the cd below
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
git archive HEAD | tar -x -C "$WORK" --one-top-level=source
for project in "$WORK/source" "$WORK/source/projects/DDWLab"; do
  "$PY" -m pip wheel --no-deps --no-build-isolation -q -w "$WORK/dist" "$project"
done
"$PY" -m pip install --no-deps -q --target "$WORK/site" "$WORK"/dist/*.whl
mkdir "$WORK/run"
cp -r tests "$WORK/run/tests"
cp setup.cfg "$WORK/run/"  # the suite's pytest settings
rm -rf "$WORK/run/tests/lab" "$WORK/run/tests/scripts"
cd "$WORK/run"
files=$(grep -L -E "python_command|run_python|scripts/|ROOT /|ROOT\b.*(README|Makefile|projects)" \
  $(find tests -name 'test_*.py' | sort) | grep -v -E "test_(layout|wheel|makefile|readme|projects)\.py")
echo "test_installed: $(echo "$files" | wc -l) test files against $(ls "$WORK/dist")"
PYTHONPATH="$WORK/site:$WORK/run" OMP_NUM_THREADS=1 "$PY" -c \
  'import ddw_detectron, sys; assert "/site/" in ddw_detectron.__file__, ddw_detectron.__file__'
PYTHONPATH="$WORK/site:$WORK/run" OMP_NUM_THREADS=1 "$PY" -m pytest -p no:cacheprovider \
  --rootdir "$WORK/run" $files "$@"
