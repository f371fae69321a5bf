"""Every command-line tool refuses a planted file: a ``.pkl`` (or ``.pth``) whose unpickling runs
code, and a YAML config with a Python tag. No marker file appears, and the error names the file."""

from pathlib import Path

import pytest

from tests.helpers import (
    FOLDER_PRETRAINING,
    ROOT,
    TINY_DETECTION,
    make_image_folder,
    payload_pkl,
    payload_pth,
    payload_yaml,
    run_python,
)

pytestmark = pytest.mark.long(120)

DETECTION = ROOT / "configs" / "Demo" / "faster_rcnn_DDW_R_18_FPN_shapes.yaml"
PRETRAINING = ROOT / "configs" / "ImageNet" / "DDW_R_18.yaml"


def tool_commands(tmp: Path, config: Path, weights: Path, images: Path) -> dict:
    """``{tool: arguments}``: each entry point given ``config`` and ``weights``."""
    out = tmp / "out"
    detection = [*TINY_DETECTION, "OUTPUT_DIR", out, "MODEL.WEIGHTS", weights]
    return {
        "train_net": ["scripts/train_net.py", "--config-file", config, *detection],
        "pretrain_imagenet": [
            "scripts/pretrain_imagenet.py", "--config-file", config, "CLS.DATA_ROOT", images,
            *FOLDER_PRETRAINING, "OUTPUT_DIR", out, "MODEL.WEIGHTS", weights,
        ],
        "demo": [
            "scripts/demo.py", "--config-file", config, "--input", images, "--output", out,
            "--opts", "MODEL.WEIGHTS", weights,
        ],
        "visualize_wiring": [
            "scripts/visualize_wiring.py", "--config-file", config, "--input", images,
            "--output", out, "--opts", "MODEL.WEIGHTS", weights,
        ],
        "freeze_wiring": [
            "scripts/freeze_wiring.py", "--config-file", config, "--dataset", "ddw_shapes_tiny",
            "--output", out / "frozen.pth", "MODEL.WEIGHTS", weights,
        ],
        "convert_pretrained": [
            "scripts/convert_pretrained.py", "--source", "detectron2", "--config-file", config,
            weights, out / "converted.pth",
        ],
    }  # fmt: skip


@pytest.fixture(scope="module")
def images(module_folder):
    return make_image_folder(module_folder("images"))


def run_tool(arguments, cache):
    return run_python(*arguments, env={"DDW_DATASETS_CACHE": cache}, timeout=600)


def config_for(tool: str) -> Path:
    return PRETRAINING if tool == "pretrain_imagenet" else DETECTION


TOOLS = list(tool_commands(Path("."), Path("."), Path("."), Path(".")))


@pytest.mark.parametrize("tool", TOOLS)
def test_a_pickle_payload_given_as_weights_runs_nothing(tool, tmp_path, images, cache):
    marker = tmp_path / "pwned"
    weights = payload_pkl(tmp_path / "R-50.pkl", marker)
    arguments = tool_commands(tmp_path, config_for(tool), weights, images)[tool]
    if tool == "pretrain_imagenet":
        arguments[-1] = payload_pth(tmp_path / "weights.pth", marker)  # its weights are .pth
    result = run_tool(arguments, cache)
    assert result.returncode != 0
    assert not marker.exists(), f"{tool} ran the payload"
    assert f"{tool}: error: {arguments[-1] if tool == 'pretrain_imagenet' else weights}" in (
        result.stderr
    )
    assert "is refused: it is not a plain weights file" in result.stderr


def test_resume_from_a_last_checkpoint_naming_a_payload_runs_nothing(tmp_path, cache):
    marker = tmp_path / "pwned"
    out = tmp_path / "out"
    out.mkdir()
    payload_pkl(out / "model_0001.pkl", marker)
    (out / "last_checkpoint").write_text("model_0001.pkl")
    result = run_tool(
        ["scripts/train_net.py", "--config-file", DETECTION, "--resume", *TINY_DETECTION,
         "OUTPUT_DIR", out],
        cache,
    )  # fmt: skip
    assert result.returncode != 0 and not marker.exists()
    assert f"train_net: error: {out / 'model_0001.pkl'} is refused" in result.stderr


@pytest.mark.parametrize("tool", TOOLS)
def test_a_config_with_a_python_tag_runs_nothing(tool, tmp_path, images, cache):
    marker = tmp_path / "pwned"
    config = payload_yaml(tmp_path / "evil.yaml", marker, base=str(config_for(tool)))
    weights = tmp_path / "none.pth"
    result = run_tool(tool_commands(tmp_path, config, weights, images)[tool], cache)
    assert result.returncode != 0
    assert not marker.exists(), f"{tool} ran the payload"
    assert f"{tool}: error: {config} is refused" in result.stderr
    assert "python/object/apply:os.system" in result.stderr
