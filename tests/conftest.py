import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

# Without a GPU, Triton's kernels run in its interpreter on CPU tensors (the fused aggregation's
# tests); Triton reads this when a kernel is defined, so it is set before anything imports one.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import ddw_lab  # noqa: E402, F401  (registers the generated datasets ddw_shapes_* the tests use)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes-long runs, only with DDW_SLOW_TESTS=1")
    config.addinivalue_line(
        "markers", "long(seconds): a file whose tests take about this long; started first"
    )


def _seconds(item) -> float:
    mark = item.get_closest_marker("long")
    return mark.args[0] if mark else 0.0


def pytest_collection_modifyitems(config, items):
    # make test runs whole files in parallel processes (pytest-xdist, --dist loadfile) in the
    # order collected: the longest files go first, so that none is left running alone at the end.
    items.sort(key=lambda item: -_seconds(item))
    if os.environ.get("DDW_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow; set DDW_SLOW_TESTS=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def module_folder(request, tmp_path_factory):
    """Makes folders for one test module's shared runs: ``module_folder("run")``. They are removed
    after the module unless one of its tests failed, as ``tmp_path_retention_policy = failed``
    does for ``tmp_path``: the runs write checkpoints of about 100 MB each, and a whole suite's
    kept folders would fill gigabytes of the temporary disk."""
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])

    def make(name: str) -> Path:
        folder = root / name
        folder.mkdir()
        return folder

    failed_before = request.session.testsfailed
    yield make
    if request.session.testsfailed == failed_before:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cache(module_folder):
    """A dataset cache with a small classification set (the real generator, fewer images)."""
    from ddw_lab.data import shapes

    folder = module_folder("datasets")
    patch = pytest.MonkeyPatch()
    patch.setenv("DDW_DATASETS_CACHE", str(folder))
    patch.setitem(shapes.CLASSIFICATION_SPLITS, "train", (10, 11))
    patch.setitem(shapes.CLASSIFICATION_SPLITS, "val", (10, 12))
    shapes.shapes_classification_root()
    yield folder
    patch.undo()


@pytest.fixture
def small_disk(tmp_path):
    """A real small disk: a 3 MiB tmpfs mounted at ``tmp_path/disk`` (the test is skipped where
    this machine does not allow mounting)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)
