"""The example projects train a few iterations on the demo data and build from LazyConfig."""

import json
from pathlib import Path

import pytest

from tests.helpers import ROOT, TINY_DETECTION, run_python

TINY = [*TINY_DETECTION, "SOLVER.MAX_ITER", "3"]


@pytest.fixture(scope="module")
def env(module_folder):
    return {"DDW_DATASETS_CACHE": module_folder("datasets")}


def run(env, path, *args):
    result = run_python(path, *args, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def train_project(env, project: str, config: str, output: Path):
    """``projects/<project>/train_net.py`` with its config ``configs/<config>``, a few iterations
    on the tiny shapes set."""
    folder = Path("projects") / project
    script, config_file = folder / "train_net.py", ROOT / folder / "configs" / config
    return run(env, script, "--config-file", config_file, *TINY, "OUTPUT_DIR", output)


def metrics(output):
    return [json.loads(line) for line in (output / "metrics.json").read_text().splitlines()]


def test_mask_rcnn_with_a_custom_mask_head(env, tmp_path):
    result = train_project(env, "DDWMaskRCNN", "mask_rcnn_DDW_R_18_FPN_light_shapes.yaml", tmp_path)
    assert "box AP = " in result.stdout and "mask AP = " in result.stdout
    losses = set().union(*metrics(tmp_path))
    assert "loss_mask" in losses and "ddw/res3/kept" in losses
    assert "LightMaskHead" in (tmp_path / "config.yaml").read_text()


def test_wiring_probe_registered_next_to_ddw(env, tmp_path):
    result = train_project(env, "WiringProbe", "wiring_probe_DDW_R_18_FPN_shapes.yaml", tmp_path)
    assert "box AP = " in result.stdout
    keys = set().union(*metrics(tmp_path))
    assert {"loss_wiring_probe", "wiring_probe/accuracy"} <= keys


def test_lazyconfig_r50_builds_a_ddw_detector():
    from detectron2.config import LazyConfig, instantiate

    from ddw_detectron.layers import DAGStage

    cfg = LazyConfig.load(
        str(ROOT / "configs" / "COCO-Detection" / "faster_rcnn_DDW_R_50_FPN_1x.py")
    )
    cfg.model.backbone.bottom_up.stem.norm = "BN"
    model = instantiate(cfg.model)
    stages = {m.wiring_name: len(m) for m in model.modules() if isinstance(m, DAGStage)}
    assert stages == {"res2": 3, "res3": 4, "res4": 6, "res5": 3}
    assert model.roi_heads.mask_on is False
