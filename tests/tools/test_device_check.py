"""The prepared device check (``scripts/device_check.py``): its dry mode runs every step on the
CPU at tiny sizes, so that the one command a GPU session runs cannot rot."""

import json
import os
import subprocess
import sys

import pytest
import torch

from ddw_detectron.tools.device_check import STEPS, run_device_check
from tests.helpers import ROOT

pytestmark = pytest.mark.long(100)


def test_dry_run_passes_every_step_and_writes_the_section(cache, tmp_path):
    command = [sys.executable, str(ROOT / "scripts" / "device_check.py"), "--dry"]
    env = {**os.environ, "DDW_DATASETS_CACHE": str(cache)}
    result = subprocess.run(
        [*command, "--output", str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert list(report["steps"]) == list(STEPS)
    assert all(step["ok"] for step in report["steps"].values()), report["steps"]
    for bench in ("bench_fp32", "bench_amp"):
        ratios = report["steps"][bench]["ratios"]
        assert set(ratios["compiled"]) == {"train_step", "inference", "inference_backbone"}
        assert report["steps"][bench]["operators"]["inference_backbone"]["eager"]["per_node"] > 0
    assert report["steps"]["train"]["iterations"] == 2
    assert report["steps"]["export"]["max_box_difference"] < 1e-3
    section = (tmp_path / "device_check.md").read_text()
    assert section.startswith("## Device check: dry run on the CPU")
    assert "### bench_amp: R-18 Faster R-CNN FPN, cpu, batch 2, shorter side 64, AMP" in section
    assert "Compiled backbones (torch.compile, aot_eager)" in section


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_without_cuda_the_real_check_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="needs CUDA; on a CPU run it with --dry"):
        run_device_check(tmp_path)
