"""Training, checking and looking at one's own COCO-format json from the command line
(``--dataset NAME=annotations.json:images/``), as docs/training.md shows."""

import json

import pytest

from tests.helpers import ROOT, run_python, write_dataset

pytestmark = pytest.mark.long(60)

DEMO = ROOT / "configs" / "Demo" / "faster_rcnn_DDW_R_18_FPN_shapes.yaml"


@pytest.fixture(scope="module")
def mine(module_folder):
    json_path, images, _ = write_dataset(module_folder("mine"), good=6, defects=())
    return f"mine={json_path}:{images}"


def test_train_net_trains_and_evaluates_on_it(mine, tmp_path):
    result = run_python(
        "scripts/train_net.py", "--config-file", DEMO, "--dataset", mine,
        "DATASETS.TRAIN", "('mine',)", "DATASETS.TEST", "('mine',)",
        "MODEL.ROI_HEADS.NUM_CLASSES", "1", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.MAX_ITER", "2",
        "SOLVER.WARMUP_ITERS", "1", "SOLVER.STEPS", "()", "INPUT.MIN_SIZE_TRAIN", "(64,)",
        "INPUT.MIN_SIZE_TEST", "64", "OUTPUT_DIR", tmp_path, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "final_results.json").read_text())
    assert set(results["bbox"]) >= {"AP", "AP50", "AP75"}
    assert "Evaluation results for bbox" in result.stdout + result.stderr


def test_check_dataset_reads_it(mine):
    result = run_python("scripts/check_dataset.py", "--dataset", mine, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problem that would break training" in result.stdout


def test_a_wrong_argument_is_one_line(tmp_path):
    result = run_python(
        "scripts/train_net.py", "--config-file", DEMO, "--dataset", "mine=x.json",
        "OUTPUT_DIR", tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "train_net: error: --dataset 'mine=x.json': expected a registered name" in (
        result.stderr
    )


def test_demo_runs_on_its_images_with_its_metadata(mine, tmp_path):
    images = mine.split(".json:")[1]
    result = run_python(
        "scripts/demo.py", "--config-file", DEMO, "--dataset", mine, "--input", images,
        "--output", tmp_path, "--confidence-threshold", "0.0",
        "--opts", "MODEL.ROI_HEADS.NUM_CLASSES", "1", "INPUT.MIN_SIZE_TEST", "64", timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert len(list(tmp_path.glob("*.jpg")) + list(tmp_path.glob("*.png"))) >= 6
