"""scripts/train_net.py end to end on the tiny demo split: training, evaluation, telemetry,
resume, eval-only, two CPU processes, and bad input."""

import json
import re
import subprocess

import pytest

from ddw_lab.data.shapes import VERSION
from tests.helpers import ROOT, TINY_DETECTION, output_dir_held, run_python

pytestmark = pytest.mark.long(85)

DEMO = ROOT / "configs" / "Demo" / "faster_rcnn_DDW_R_18_FPN_shapes.yaml"
TINY = [*TINY_DETECTION, "SOLVER.BASE_LR", "0.01"]


@pytest.fixture(scope="module")
def cache(module_folder):
    return module_folder("datasets")


def train_net(cache, output, *opts, args=(), config=DEMO, check=True, timeout=600):
    result = run_python(
        "scripts/train_net.py",
        "--config-file",
        config,
        *args,
        *TINY,
        "OUTPUT_DIR",
        output,
        *opts,
        env={"DDW_DATASETS_CACHE": cache},
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def first_run(cache, module_folder):
    output = module_folder("run")
    result = train_net(cache, output, "SOLVER.MAX_ITER", "4", "SOLVER.CHECKPOINT_PERIOD", "2")
    return output, result


def read_metrics(output):
    return [json.loads(line) for line in (output / "metrics.json").read_text().splitlines()]


def test_training_writes_wiring_metrics_pictures_and_ap(first_run):
    output, result = first_run
    metrics = read_metrics(output)
    keys = set().union(*metrics)
    for stage in ("res2", "res3", "res4", "res5"):
        for stat in ("mean_edge_weight", "kept", "diversity"):
            assert f"ddw/{stage}/{stat}" in keys
    last = [m for m in metrics if "ddw/res4/kept" in m][-1]
    assert 0.0 < last["ddw/res4/kept"] <= 1.0 and 0.0 < last["ddw/res4/mean_edge_weight"] < 1.0
    assert "box AP = " in result.stdout
    assert "bbox" in json.loads((output / "final_results.json").read_text())
    pictures = list((output / "wiring").glob("*.png"))
    assert len(pictures) == 4 and all(p.stat().st_size > 5000 for p in pictures)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = output.glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    assert {f"ddw/wiring/{s}" for s in ("res2", "res3", "res4", "res5")} <= set(
        accumulator.Tags()["images"]
    )
    assert "ddw/res2/diversity" in accumulator.Tags()["scalars"]
    assert (output / "model_final.pth").is_file()


def test_eval_only_reproduces_the_run(first_run, cache, tmp_path):
    output, result = first_run
    evaluation = train_net(
        cache, tmp_path, "MODEL.WEIGHTS", str(output / "model_final.pth"), args=["--eval-only"]
    )
    ap_line = [line for line in result.stdout.splitlines() if line.startswith("box AP = ")][-1]
    assert ap_line in evaluation.stdout
    ours = json.loads((tmp_path / "inference" / "coco_instances_results.json").read_text())
    theirs = json.loads((output / "inference" / "coco_instances_results.json").read_text())
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        assert a["category_id"] == b["category_id"]
        assert a["bbox"] == pytest.approx(b["bbox"], abs=1e-3) and a["score"] == pytest.approx(
            b["score"], abs=1e-5
        )


def test_resume_continues_from_the_last_checkpoint(first_run, cache, tmp_path):
    output, _ = first_run
    copy = tmp_path / "run"
    subprocess.run(["cp", "-r", str(output), str(copy)], check=True)
    result = train_net(
        cache, copy, "SOLVER.MAX_ITER", "6", "SOLVER.CHECKPOINT_PERIOD", "2", args=["--resume"]
    )
    log = result.stdout + result.stderr
    assert "Starting training from iteration 4" in log
    iterations = [m["iteration"] for m in read_metrics(copy) if "total_loss" in m]
    assert iterations[-1] == 5


def test_two_cpu_processes_train_with_identical_weights(cache, tmp_path):
    result = train_net(
        cache,
        tmp_path,
        "SOLVER.MAX_ITER",
        "3",
        "SOLVER.IMS_PER_BATCH",
        "4",
        args=["--num-gpus", "2"],
    )
    log = result.stdout + result.stderr
    assert "weights identical across 2 processes" in log
    assert (tmp_path / "model_final.pth").is_file()


def test_missing_dataset_folder_is_named(cache, tmp_path):
    env_root = tmp_path / "datasets"
    env_root.mkdir()
    result = run_python(
        "scripts/train_net.py",
        "--config-file",
        DEMO,
        "DATASETS.TRAIN",
        "('coco_2017_train',)",
        "OUTPUT_DIR",
        tmp_path / "out",
        env={"DETECTRON2_DATASETS": env_root},
        timeout=300,
    )
    assert result.returncode != 0
    assert "dataset 'coco_2017_train'" in result.stderr and str(env_root) in result.stderr


def test_unknown_config_key_is_named(cache, tmp_path):
    result = train_net(cache, tmp_path, "MODEL.DDW.NOT_A_KEY", "1", check=False)
    assert result.returncode != 0 and "Non-existent key: MODEL.DDW.NOT_A_KEY" in result.stderr


def test_nan_loss_is_named_and_keeps_the_last_checkpoint(first_run, cache, tmp_path):
    output, _ = first_run
    copy = tmp_path / "run"
    subprocess.run(["cp", "-r", str(output), str(copy)], check=True)
    before = {p.name: p.read_bytes() for p in copy.glob("*.pth")}
    tag = (copy / "last_checkpoint").read_text()
    # An RPN loss weight of 1e39 (inf in float32) makes the first resumed step's loss infinite.
    result = train_net(
        cache,
        copy,
        "SOLVER.MAX_ITER",
        "8",
        "SOLVER.CHECKPOINT_PERIOD",
        "1",
        "MODEL.RPN.LOSS_WEIGHT",
        "1e39",
        args=["--resume"],
        check=False,
    )
    assert result.returncode != 0
    assert "Loss became infinite or NaN at iteration=4!" in result.stderr, result.stderr[-3000:]
    assert {p.name: p.read_bytes() for p in copy.glob("*.pth")} == before
    assert (copy / "last_checkpoint").read_text() == tag


def test_checkpoint_of_another_architecture_is_refused(cache, tmp_path):
    import torch
    from detectron2.modeling import build_model

    from tests.helpers import ALL_STAGES, make_cfg

    cfg = make_cfg("mobilenetv2")
    cfg.merge_from_file(str(ROOT / "configs" / "Base-DDW-RCNN-FPN.yaml"))
    cfg.MODEL.BACKBONE.NAME = "build_ddw_mobilenetv2_fpn_backbone"
    cfg.MODEL.FPN.IN_FEATURES = ["mb2", "mb3", "mb5", "mb7"]
    cfg.MODEL.DDW.DYNAMIC_STAGES = ALL_STAGES["mobilenetv2"]
    weights = tmp_path / "mobilenetv2.pth"
    torch.save({"model": build_model(cfg).state_dict()}, weights)
    result = train_net(
        cache, tmp_path / "out", "MODEL.WEIGHTS", str(weights), args=["--eval-only"], check=False
    )
    assert result.returncode != 0
    assert re.search(
        rf"{re.escape(str(weights))} leaves \d+ of the model's \d+ backbone", result.stderr
    )
    assert "it is a checkpoint of another architecture" in result.stderr


def run_script(cache, script, *args):
    return run_python(f"scripts/{script}", *args, env={"DDW_DATASETS_CACHE": cache}, timeout=600)


def test_demo_predictor_writes_detections_and_wirings(first_run, cache, tmp_path):
    import cv2
    import numpy as np

    output, _ = first_run
    inputs = tmp_path / "in"
    inputs.mkdir()
    tiny = cache / VERSION / "tiny" / "images"
    for name in ("00000.jpg", "00001.jpg"):
        (inputs / name).write_bytes((tiny / name).read_bytes())
    (inputs / "readme.txt").write_text("not an image")
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (160, 160))
    for name in ("00000.jpg", "00001.jpg", "00002.jpg"):
        writer.write(cv2.imread(str(tiny / name)))
    writer.release()
    result = run_script(
        cache,
        "demo.py",
        "--config-file",
        str(DEMO),
        "--input",
        str(inputs),
        "--video-input",
        str(video),
        "--output",
        str(tmp_path / "out"),
        "--confidence-threshold",
        "0.0",
        "--wiring-every",
        "2",
        "--opts",
        "MODEL.WEIGHTS",
        str(output / "model_final.pth"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"excluding {inputs / 'readme.txt'}: not a readable image" in result.stderr
    out = tmp_path / "out"
    for name in (
        "00000.jpg",
        "00000_wiring.png",
        "00001.jpg",
        "00001_wiring.png",
        "clip.mp4",
        "clip_frame00000_wiring.png",
        "clip_frame00002_wiring.png",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 1000, name
    drawn = cv2.imread(str(out / "00000.jpg"))
    original = cv2.imread(str(tiny / "00000.jpg"))
    assert (
        drawn.shape == original.shape
        and np.abs(drawn.astype(int) - original.astype(int)).mean() > 1.0
    )
    assert "3 frames" in result.stdout


def test_freeze_wiring_reports_the_ap_of_both_models(first_run, cache, tmp_path):
    output, _ = first_run
    result = run_script(
        cache,
        "freeze_wiring.py",
        "--config-file",
        str(DEMO),
        "--dataset",
        "ddw_shapes_tiny",
        "--output",
        str(tmp_path / "frozen.pth"),
        "MODEL.WEIGHTS",
        str(output / "model_final.pth"),
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
        "0.0",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "frozen.json").read_text())
    assert set(report["dynamic"]) == {"AP", "AP50", "AP75"} and set(report["frozen"]) == {
        "AP",
        "AP50",
        "AP75",
    }
    assert report["ap_loss"] == pytest.approx(report["dynamic"]["AP"] - report["frozen"]["AP"])
    assert set(report["wiring"]) == {"res2", "res3", "res4", "res5"}
    assert "box AP dynamic" in result.stdout and (tmp_path / "frozen.pth").is_file()


@pytest.mark.parametrize("eval_only", [False, True])
def test_a_run_refused_for_a_busy_folder_writes_nothing_into_it(cache, tmp_path, eval_only):
    (tmp_path / "config.yaml").write_text("SOLVER:\n  MAX_ITER: 400\n")
    (tmp_path / "log.txt").write_text("the running run's log\n")
    with output_dir_held(tmp_path) as pid:
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        args = ["--eval-only"] if eval_only else []
        result = train_net(cache, tmp_path, "SOLVER.MAX_ITER", "4", args=args, check=False)
        after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert result.returncode == 1
    assert f"train_net: error: {tmp_path} is in use by a running process (process {pid}" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert after == before
