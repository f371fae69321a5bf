"""The Makefile's environment step: current after a build, clear errors on a bad machine."""

import os
import shutil
import subprocess

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def run(args, **env):
    return subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env}, timeout=300
    )


def test_environment_is_current_so_nothing_is_reinstalled():
    # `make -q` exits 0 only when the stamp keyed on the pinned files exists: a second
    # `make test` does not run the setup step again.
    assert run(["make", "-q", "setup"]).returncode == 0
    dry = run(["make", "-n", "test"])
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
    result = run(["make", "lint"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "All checks passed!" in result.stdout
