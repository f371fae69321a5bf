"""The demo pipeline (scripts/run_demo.py, ``make demo``) at tiny sizes: every step, the
hand-off, the report, reuse of finished steps, refusal of a folder of another run, and
recovery from a SIGKILL during pretraining and during detection."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ddw_lab.demo.pipeline import (
    MANIFEST,
    DemoFolderConflict,
    DemoPipeline,
    HandOffError,
    check_handoff,
)
from tests.helpers import TINY_DEMO_DETECTION as DETECT
from tests.helpers import TINY_PRETRAINING as PRETRAIN
from tests.helpers import python_command, run_python, run_until

pytestmark = pytest.mark.long(65)


@pytest.fixture(scope="module")
def finished(cache, module_folder):
    output = module_folder("demo")
    pipeline = DemoPipeline(output, pretrain_opts=PRETRAIN, detection_opts=DETECT)
    pipeline.run()
    return pipeline


def nonblank(path: Path) -> bool:
    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    return pixels.std() > 5.0


def test_every_step_writes_its_output_and_the_report_shows_real_pictures(finished):
    assert finished.backbone_weights.is_file()
    assert json.loads((finished.detect_dir / "final_results.json").read_text())["bbox"]["AP"] >= 0.0
    index = finished.report_dir / "index.html"
    text = index.read_text()
    for heading in (
        "Box AP on ddw_shapes_tiny",
        "Per class",
        "Training curves",
        "Mean wiring per dominant class",
        "distinct kept-edge patterns",
        "ground truth (left), detections (right)",
    ):
        assert heading in text
    pictures = [p.split("'")[0] for p in text.split("<img src='")[1:]]
    assert (
        len(pictures) == 1 + 3 + 2 * 8
    )  # curves, the dataset pictures, detections and wiring per image
    for picture in pictures:
        assert (finished.report_dir / picture).is_file(), picture
        assert nonblank(finished.report_dir / picture), picture
    stats = json.loads((finished.report_dir / "wiring_statistics.json").read_text())
    assert stats["num_images"] == 8 and set(stats["stages"]) == {"res2", "res3", "res4", "res5"}


def test_handoff_loads_every_backbone_key(finished):
    result = check_handoff(finished.detection_cfg(), str(finished.backbone_weights))
    assert (
        result["missing"] == [] and result["unexpected"] == [] and result["incorrect_shapes"] == []
    )
    assert (
        any(".routers." in k for k in result["backbone_keys"])
        and len(result["backbone_keys"]) > 100
    )


def test_handoff_of_another_architecture_is_refused(finished, tmp_path):
    other = DemoPipeline(
        tmp_path, pretrain_opts=PRETRAIN, detection_opts=DETECT + ["MODEL.RESNETS.DEPTH", "34"]
    )
    with pytest.raises((HandOffError, ValueError), match="backbone_detectron2.pth"):
        check_handoff(other.detection_cfg(), str(finished.backbone_weights))


def test_second_run_reuses_finished_steps(finished, capsys):
    stamps = {
        p: p.stat().st_mtime_ns
        for p in (finished.backbone_weights, finished.detect_dir / "model_final.pth")
    }
    DemoPipeline(finished.output, pretrain_opts=PRETRAIN, detection_opts=DETECT).run(
        ["pretrain", "detect"]
    )
    out = capsys.readouterr().out
    assert "reusing the pretrained backbone" in out and "reusing the trained detector" in out
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_folder_of_another_config_is_refused_naming_both(finished):
    other = DemoPipeline(
        finished.output, pretrain_opts=PRETRAIN, detection_opts=DETECT + ["SOLVER.MAX_ITER", "6"]
    )
    with pytest.raises(DemoFolderConflict) as error:
        other.run(["data"])
    message = str(error.value)
    assert (
        "SOLVER.MAX_ITER 4" in message
        and "SOLVER.MAX_ITER 6" in message
        and str(finished.output) in message
    )


def test_folder_of_edited_configs_is_refused_saying_they_changed(finished, tmp_path):
    manifest = json.loads((finished.output / MANIFEST).read_text())
    (tmp_path / MANIFEST).write_text(json.dumps({**manifest, "fingerprint": "0" * 32}))
    with pytest.raises(DemoFolderConflict, match="the files have changed since that run"):
        DemoPipeline(tmp_path, pretrain_opts=PRETRAIN, detection_opts=DETECT).run(["data"])


def test_folder_of_a_plain_detection_run_is_refused(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "MODEL:\n  BACKBONE:\n    NAME: build_ddw_resnet_fpn_backbone\n  RESNETS:\n    DEPTH: 18\n"
    )
    with pytest.raises(
        DemoFolderConflict,
        match=r"config.yaml: backbone build_ddw_resnet_fpn_backbone, depth 18.*Demo/pretrain",
    ):
        DemoPipeline(tmp_path, pretrain_opts=PRETRAIN, detection_opts=DETECT).run(["data"])


def demo_args(output: Path):
    """scripts/run_demo.py's arguments: tiny settings, 3 pretraining epochs, 6 iterations."""
    pretrain = ["--pretrain-opts", *PRETRAIN, "CLS.EPOCHS", "3"]
    return ["--output", output, *pretrain, "--detection-opts", *DETECT, "SOLVER.MAX_ITER", "6"]


def run_demo_until(output: Path, cache: Path, marker: Path):
    """Start scripts/run_demo.py and SIGKILL its whole process group once ``marker`` exists."""
    command = python_command("scripts/run_demo.py", *demo_args(output))
    run_until(command, {"DDW_DATASETS_CACHE": cache}, marker)


def test_killed_demo_resumes_in_pretraining_and_in_detection(cache, tmp_path):
    output = tmp_path / "demo"
    run_demo_until(output, cache, output / "pretrain" / "last.pth")
    assert not (output / "pretrain" / "backbone_detectron2.pth").exists()
    run_demo_until(output, cache, output / "detect" / "last_checkpoint")
    log = [
        json.loads(line)["epoch"]
        for line in (output / "pretrain" / "log.jsonl").read_text().splitlines()
    ]
    assert log == [1, 2, 3]  # the second run went on from epoch 1's checkpoint
    result = run_python(
        "scripts/run_demo.py", *demo_args(output), env={"DDW_DATASETS_CACHE": cache}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "reusing the pretrained backbone" in result.stdout
    assert (
        "Resuming from" in result.stdout + result.stderr
        or "resum" in (output / "detect" / "log.txt").read_text()
    )
    assert json.loads((output / "detect" / "final_results.json").read_text())["bbox"]
    assert (output / "report" / "index.html").is_file()
