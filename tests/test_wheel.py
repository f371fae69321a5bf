"""The built wheel, installed apart from the repository: the package imports from it, its
configs load through ``model_zoo`` in both forms, and the tooling (the demo pipeline) runs from
it, since it calls the library rather than the repository's scripts."""

import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.long(90)

CHECK = r"""
import sys
from pathlib import Path
import ddw_detectron
from ddw_detectron import model_zoo
from ddw_detectron.tools.demo.pipeline import DemoPipeline

site = Path(sys.argv[1])
assert Path(ddw_detectron.__file__).is_relative_to(site), ddw_detectron.__file__
assert model_zoo.configs_root().is_relative_to(site)
yaml = model_zoo.get_config("COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.yaml")
lazy = model_zoo.get_config("COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.py")
assert yaml.MODEL.DDW.DYNAMIC_STAGES == ["res2", "res3", "res4", "res5"]
assert lazy.model.backbone.bottom_up.dynamic_stages == ["res2", "res3", "res4", "res5"]
pipeline = DemoPipeline(Path(sys.argv[2]))
pipeline.run(["data"])
print("wheel ok", pipeline.detection_cfg().MODEL.RESNETS.DEPTH)
"""


def test_the_wheel_works_apart_from_the_repository(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", tmp_path / "dist", str(ROOT)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("ddw_detectron-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, wheel],
        check=True, capture_output=True,
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(site), str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "DDW_DATASETS_CACHE": str(tmp_path / "cache"),
             "PATH": "/usr/bin:/bin"},
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "wheel ok 34" in result.stdout
