"""The Makefile's environment step: current after a build, clear errors on a bad machine."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


# The environment this suite runs in: .venv, or a user's own (make VENV=/path/to/env test).
VENV = f"VENV={sys.prefix}"


def run(args, **env):
    return subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env}, timeout=300
    )


def test_environment_is_current_so_nothing_is_reinstalled():
    # `make -q` exits 0 only when the stamp keyed on the pinned files exists: a second
    # `make test` does not run the setup step again.
    assert run(["make", "-q", "setup", VENV]).returncode == 0
    dry = run(["make", "-n", "test", VENV])
    assert "setup_env.sh" not in dry.stdout


def test_missing_python_is_named(tmp_path):
    result = run(["make", "setup", "PYTHON=python3.11-not-here", f"VENV={tmp_path / 'venv'}"])
    assert result.returncode != 0
    assert "'python3.11-not-here' was not found" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_unreachable_registry_is_named(tmp_path):
    result = run(
        ["make", "setup", f"VENV={tmp_path / 'venv'}"],
        PIP_INDEX_URL="http://127.0.0.1:9/simple",
    )
    assert result.returncode != 0
    assert "the package registry http://127.0.0.1:9/simple cannot be reached" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_lint_is_clean():
    result = run(["make", "lint", VENV])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "All checks passed!" in result.stdout


def test_a_users_own_environment_keeps_its_torch(tmp_path):
    # make VENV=<an environment setup_env did not create, with torch in it>: the pins go around
    # its torch. Checked on the command line setup_env would run, with a stand-in pip.
    venv = tmp_path / "env"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "$@" >> "$(dirname "$0")/pip.log"; '
        'for a in "$@"; do [ -f "$a" ] && cat "$a" >> "$(dirname "$0")/pip.log"; done; '
        "exit 0; fi\n"
        'case "$*" in *"import torch; print"*) echo 9.9.9;; *install_detectron2*) exit 0;; esac\n'
        "exit 0\n"
    )
    fake.chmod(0o755)
    result = run(["bash", "scripts/setup_env.sh", sys.executable, str(venv), str(venv / ".stamp")])
    assert result.returncode == 0, result.stderr
    assert f"{venv} has its own torch 9.9.9; keeping it" in result.stdout
    installed = (venv / "bin" / "pip.log").read_text()
    assert "numpy==" in installed and "torch==" not in installed
