"""The prepared device check (``scripts/device_check.py``): its dry mode runs every step on the
CPU at tiny sizes, so that the one command a GPU session runs cannot rot."""

import json
import os
import subprocess
import sys

import pytest
import torch

from ddw_lab.device_check import STEPS, run_device_check
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
    for bench in ("bench", "bench_b8"):
        ratios = report["steps"][bench]["ratios"]
        assert set(ratios["compiled"]) == {"train_step", "inference", "inference_backbone"}
        assert set(ratios["kernels"]["triton"]) == set(ratios["compiled"])
    assert report["steps"]["bench"]["operators"]["inference_backbone"]["eager"]["per_node"] > 0
    assert report["steps"]["bench_b8"]["operators"] is None  # light: timings only
    kernels = report["steps"]["kernels"]["shapes"]
    assert set(kernels) == {"tiny, k=3", "tiny, k=9"}
    # bfloat16: the eager sum rounds after each of its k - 1 additions, the fused one sums in fp32
    assert all(entry["difference"] < entry["shape"][4] * 2**-8 for entry in kernels.values())
    assert report["steps"]["train"]["iterations"] == 2
    assert report["steps"]["export"]["max_box_difference"] < 1e-3
    section = (tmp_path / "device_check.md").read_text()
    assert section.startswith("## Device check: dry run on the CPU")
    assert "### bench: R-18 Faster R-CNN FPN, cpu, batch 2, shorter side 64" in section
    assert "| the demo's R-34, 32 px, batch 8, channels_last (" in section
    assert "eager DDW / static, triton kernel" in section
    assert "### bench_b8: R-18 Faster R-CNN FPN, cpu, batch 8, shorter side 64" in section
    assert "Compiled backbones (torch.compile, aot_eager)" in section
    assert "| tiny, k=9 |" in section


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_without_cuda_the_real_check_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="needs CUDA; on a CPU run it with --dry"):
        run_device_check(tmp_path)
