"""The built wheel holds the library only, and works installed apart from the repository: the
package imports from it, its configs load through ``model_zoo`` in both forms, a DDW detector
builds from one and runs, and nothing of the lab (``ddw_lab``, the generated datasets) is in it."""

import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.long(60)

CHECK = r"""
import sys
from pathlib import Path
import torch
import ddw_detectron
from ddw_detectron import model_zoo
from detectron2.modeling import build_model

site = Path(sys.argv[1])
assert Path(ddw_detectron.__file__).is_relative_to(site), ddw_detectron.__file__
assert not [m for m in sys.modules if m.startswith("ddw_lab")]
assert model_zoo.configs_root().is_relative_to(site)
cfg = model_zoo.get_config("COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.yaml")
lazy = model_zoo.get_config("COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.py")
assert cfg.MODEL.DDW.DYNAMIC_STAGES == ["res2", "res3", "res4", "res5"]
assert lazy.model.backbone.bottom_up.dynamic_stages == ["res2", "res3", "res4", "res5"]
cfg.MODEL.DEVICE = "cpu"
model = build_model(cfg).eval()
with torch.no_grad():
    out = model([{"image": torch.rand(3, 64, 96) * 255, "height": 64, "width": 96}])
wiring = ddw_detectron.collect_wiring(model)
print("wheel ok", sorted(wiring), len(out))
"""


LAB = ("ddw_lab", "ddw_detectron/tools/", "ddw_detectron/data/shapes", "ddw_detectron/data/mixed")


def test_the_wheel_holds_the_library_and_works_apart_from_the_repository(tmp_path):
    # Built from a copy of what the repository tracks for it: a build/ folder left in the clone
    # by an earlier build would add its stale files to the wheel.
    source = tmp_path / "source"
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name if source.exists() else _mkdir(source) / name)
    for name in ("ddw_detectron", "configs"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", tmp_path / "dist", str(source)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("ddw_detectron-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"ddw_detectron", wheel.name.split("-")[0] + "-0.1.0.dist-info"}, tops
    assert not [n for n in names if any(part in n for part in LAB)]
    assert "ddw_detectron/layers/aggregate.py" in names
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, wheel],
        check=True, capture_output=True,
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(site)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "wheel ok ['res2', 'res3', 'res4', 'res5'] 1" in result.stdout


def _mkdir(folder):
    folder.mkdir()
    return folder
