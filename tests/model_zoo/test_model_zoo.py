"""``ddw_detectron.model_zoo``: configs served by the package, from a checkout and from a wheel."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ddw_detectron import model_zoo
from tests.helpers import ROOT

CONFIG = "COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.yaml"

FROM_THE_WHEEL = r"""
import sys
import ddw_detectron
from ddw_detectron import model_zoo
from detectron2.modeling import build_model
site = sys.argv[1]
assert ddw_detectron.__file__.startswith(site), ddw_detectron.__file__
path = model_zoo.get_config_file(sys.argv[2])
assert path.startswith(site), path
cfg = model_zoo.get_config(sys.argv[2])
cfg.MODEL.DEVICE = "cpu"
model = build_model(cfg)
print(path, type(model.backbone.bottom_up).__name__, cfg.MODEL.DDW.DYNAMIC_STAGES)
"""


def test_get_config_file_in_the_checkout_and_unknown_names():
    assert model_zoo.get_config_file(CONFIG) == str(ROOT / "configs" / CONFIG)
    cfg = model_zoo.get_config("ImageNet/DDW_R_18.yaml")
    assert cfg.CLS.NUM_CLASSES == 1000 and cfg.MODEL.RESNETS.DEPTH == 18
    with pytest.raises(
        FileNotFoundError, match="'COCO-Detection/nope.yaml' is not a ddw_detectron config"
    ):
        model_zoo.get_config_file("COCO-Detection/nope.yaml")


def test_installed_wheel_serves_the_configs_outside_the_repository(tmp_path):
    source = tmp_path / "source"
    for name in ("ddw_detectron", "configs"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("ddw_detectron-*.whl"))
    site = tmp_path / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    # -S: no .pth processing, so this checkout's editable install cannot be imported; the
    # environment's own folders (torch, Detectron2) come after the installed wheel on the path.
    folders = [p for p in sys.path if p and Path(p).is_dir() and Path(p).resolve() != ROOT]
    env = {"PYTHONPATH": ":".join([str(site), *folders]), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-S", "-c", FROM_THE_WHEEL, str(site), CONFIG],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        f"{site}/ddw_detectron/model_zoo/configs/{CONFIG} DDWResNet ['res2', 'res3', 'res4', "
        "'res5']" in result.stdout
    )
