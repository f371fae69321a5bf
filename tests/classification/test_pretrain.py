"""scripts/pretrain_imagenet.py on generated ImageFolders."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from ddw_detectron.classification import topk_correct
from tests.helpers import FOLDER_PRETRAINING, ROOT, make_image_folder, torchvision_resnet18

pytestmark = pytest.mark.long(80)

CONFIG = ROOT / "configs" / "ImageNet" / "DDW_R_18.yaml"
# lr 0.1: seeds 0, 1 and 2 all reach 100% top-1 on the folder's 12 validation images in 4
# epochs (at 0.2 one of them ended at 50%, at 0.8 one at chance).
SMALL = [*FOLDER_PRETRAINING, "CLS.WARMUP_EPOCHS", "0", "CLS.BASE_LR", "0.1"]


def pretrain_command(data, output, *opts, args=(), launcher=None):
    script = str(ROOT / "scripts" / "pretrain_imagenet.py")
    return (launcher or [sys.executable]) + [
        script, "--config-file", str(CONFIG), *args, "CLS.DATA_ROOT", str(data), *SMALL,
        "OUTPUT_DIR", str(output), *opts,
    ]  # fmt: skip


def pretrain(data, output, *opts, args=(), check=True, launcher=None):
    command = pretrain_command(data, output, *opts, args=args, launcher=launcher)
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if launcher else None
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def epochs(output):
    return [json.loads(line) for line in (output / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def data(module_folder):
    return make_image_folder(module_folder("folder"))


def test_top_k_by_hand():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    targets = torch.tensor([1, 2, 2, 1])
    # top-1 hits: rows 0 and 2; top-2 adds row 3 (0.3 is second); row 1's target is last.
    assert topk_correct(logits, targets, ks=(1, 2, 5)) == [2, 3, 4]


@pytest.mark.parametrize("seed", ["0", "1"])
def test_training_lowers_the_loss_and_exports_the_backbone(data, tmp_path, seed):
    result = pretrain(data, tmp_path, "CLS.EPOCHS", "4", "CLS.SEED", seed)
    log = epochs(tmp_path)
    assert [e["epoch"] for e in log] == [1, 2, 3, 4]
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    assert log[-1]["top1"] >= 2 * 100 / 3
    assert 0 < log[-1]["val_loss"] < log[0]["val_loss"]
    assert "epoch 4/4" in result.stderr  # tqdm bar
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert (tmp_path / "backbone_detectron2.pth").is_file()


def test_exported_backbone_loads_into_the_fpn_backbone_with_every_key(data, tmp_path):
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    import ddw_detectron
    from ddw_detectron.classification import add_classification_config
    from ddw_detectron.engine import DDWCheckpointer

    pretrain(data, tmp_path, "CLS.EPOCHS", "1")
    cfg = get_cfg()
    ddw_detectron.add_ddw_config(cfg)
    add_classification_config(cfg)
    cfg.merge_from_file(str(ROOT / "configs" / "Base-DDW-RCNN-FPN.yaml"))
    cfg.merge_from_file(str(CONFIG))
    cfg.MODEL.BACKBONE.NAME = "build_ddw_resnet_fpn_backbone"
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg)
    checkpointer = DDWCheckpointer(model)
    checkpointer.load(str(tmp_path / "backbone_detectron2.pth"))
    incompatible = checkpointer.last_incompatible
    assert [k for k in incompatible.missing_keys if k.startswith("backbone.bottom_up.")] == []
    assert incompatible.unexpected_keys == [] and incompatible.incorrect_shapes == []
    exported = torch.load(tmp_path / "backbone_detectron2.pth", weights_only=True)["model"]
    last = torch.load(tmp_path / "last.pth", weights_only=False)["model"]
    torch.testing.assert_close(
        model.backbone.bottom_up.res3.routers[0].fc.weight,
        last["backbone.res3.routers.0.fc.weight"],
    )
    assert "res3.routers.0.fc.weight" in exported


def test_killed_run_resumes_from_the_last_complete_epoch(data, tmp_path):
    reference = tmp_path / "reference"
    pretrain(data, reference, "CLS.EPOCHS", "3")
    interrupted = tmp_path / "interrupted"
    command = pretrain_command(data, interrupted, "CLS.EPOCHS", "3")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while time.time() < deadline and not (
        (interrupted / "log.jsonl").exists() and (interrupted / "log.jsonl").read_text().strip()
    ):
        time.sleep(0.05)
    time.sleep(0.5)  # inside epoch 2
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = torch.load(interrupted / "last.pth", weights_only=False)["epoch"]
    assert done in (1, 2)
    result = pretrain(data, interrupted, "CLS.EPOCHS", "3", args=["--resume"])
    assert f"resumed from {interrupted / 'last.pth'} after epoch {done}" in result.stdout
    assert [e["epoch"] for e in epochs(interrupted)] == [1, 2, 3][:done] + [
        e for e in [1, 2, 3] if e > done
    ]
    a = torch.load(reference / "last.pth", weights_only=False)
    b = torch.load(interrupted / "last.pth", weights_only=False)
    for key in a["model"]:
        torch.testing.assert_close(b["model"][key], a["model"][key], rtol=1e-4, atol=1e-5, msg=key)
    momentum_a = a["optimizer"]["state"]
    momentum_b = b["optimizer"]["state"]
    assert momentum_a.keys() == momentum_b.keys()
    for key in momentum_a:
        torch.testing.assert_close(
            momentum_b[key]["momentum_buffer"],
            momentum_a[key]["momentum_buffer"],
            rtol=1e-4,
            atol=1e-5,
        )


def test_two_process_torchrun_gloo(data, tmp_path):
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
    ]
    result = pretrain(data, tmp_path, "CLS.EPOCHS", "1", "CLS.BATCH_SIZE", "4", launcher=launcher)
    assert "weights identical across 2 processes" in result.stdout + result.stderr
    evaluation = pretrain(data, tmp_path, "CLS.EPOCHS", "1", args=["--eval-only"])
    metrics = json.loads([x for x in evaluation.stdout.splitlines() if x.startswith("{")][-1])
    assert metrics["top1"] == pytest.approx(epochs(tmp_path)[-1]["top1"])


def test_corrupt_image_is_excluded_and_counted(data, tmp_path):
    broken = tmp_path / "data"
    subprocess.run(["cp", "-r", str(data), str(broken)], check=True)
    (broken / "train" / "class_0" / "zzz_truncated.png").write_bytes(
        (data / "train" / "class_0" / "000.png").read_bytes()[:60]
    )
    result = pretrain(broken, tmp_path / "out", "CLS.EPOCHS", "1")
    assert epochs(tmp_path / "out")[0]["unreadable_images"] == 1
    log = result.stdout + result.stderr  # Detectron2's logger setup writes to stdout
    assert "zzz_truncated.png" in log and "1 unreadable images were excluded" in log


@pytest.mark.parametrize("problem", ["empty class", "no val", "other architecture"])
def test_bad_input_is_a_clear_error(data, tmp_path, problem):
    root = tmp_path / "data"
    subprocess.run(["cp", "-r", str(data), str(root)], check=True)
    output = tmp_path / "out"
    if problem == "empty class":
        (root / "train" / "class_9").mkdir()
        expected = f"class folder {root / 'train' / 'class_9'} has no images"
    elif problem == "no val":
        subprocess.run(["rm", "-r", str(root / "val")], check=True)
        expected = f"CLS.DATA_ROOT/val ({root / 'val'}) does not exist"
    else:
        pretrain(root, output, "CLS.EPOCHS", "1")
        expected = "is a checkpoint of another architecture"
    extra = ["MODEL.RESNETS.DEPTH", "34"] if problem == "other architecture" else []
    result = pretrain(root, output, "CLS.EPOCHS", "2", *extra, args=["--resume"], check=False)
    assert result.returncode != 0
    assert expected in result.stderr


def in_process(data, output, *opts, resume=False):
    from ddw_detectron.classification import Pretrainer, add_classification_config
    from ddw_detectron.config import load_config

    opts = ["CLS.DATA_ROOT", str(data), *SMALL, "OUTPUT_DIR", str(output), *opts]
    return Pretrainer(
        load_config(str(CONFIG), opts, extra=[add_classification_config]), resume=resume
    )


def test_epoch_log_has_data_and_iteration_time(data, tmp_path):
    result = in_process(data, tmp_path, "CLS.EPOCHS", "1").train()
    assert 0 < result["data_time"] < result["time"]
    assert set(epochs(tmp_path)[0]) >= {"data_time", "time", "images_per_sec"}


def test_gradients_are_clipped_to_the_configured_norm(data, tmp_path):
    trainer = in_process(data, tmp_path, "CLS.CLIP_GRAD_NORM", "0.001")
    images, targets, _ = next(iter(trainer.train_loader))
    trainer._train_step(images, targets, epoch=0)
    norm = torch.nn.utils.get_total_norm(
        [p.grad for p in trainer.model.parameters() if p.grad is not None]
    )
    assert float(norm) == pytest.approx(0.001, rel=1e-3)


def test_the_training_threshold_warms_up_over_the_configured_iterations(data, tmp_path):
    from ddw_detectron.layers import dag_stages

    trainer = in_process(data, tmp_path, "MODEL.DDW.THRESHOLD_WARMUP_ITERS", "2")
    stages = list(dag_stages(trainer.model).values())
    images, targets, _ = next(iter(trainer.train_loader))
    seen = []
    for _ in range(3):
        trainer._train_step(images, targets, epoch=0)
        seen.append([(s.threshold_warming_up, float(s.training_threshold)) for s in stages][0])
    assert seen == [(True, 0.0), (True, pytest.approx(0.05)), (False, pytest.approx(0.1))]


def test_ema_is_evaluated_and_the_better_weights_are_exported(data, tmp_path, capsys):
    trainer = in_process(
        data, tmp_path, "CLS.EPOCHS", "2", "CLS.EMA.ENABLED", "True", "CLS.EMA.DECAY", "0.9"
    )
    result = trainer.train()
    assert {"ema_top1", "ema_top5"} <= set(result) and {"ema_top1"} <= set(epochs(tmp_path)[-1])
    raw, ema = trainer.model.state_dict(), trainer.ema.module.state_dict()
    key = "backbone.res3.0.conv1.weight"
    assert not torch.equal(raw[key], ema[key])
    exported = tmp_path / "backbone_detectron2.pth"
    for winner, scores in (
        ("EMA", {"top1": 10.0, "ema_top1": 90.0}),
        ("raw", {"top1": 90.0, "ema_top1": 10.0}),
    ):
        trainer._export_better(scores)
        assert (
            f"exported the {winner} weights (top-1: EMA {scores['ema_top1']:.2f}, raw "
            f"{scores['top1']:.2f})" in capsys.readouterr().out
        )
        source = ema if winner == "EMA" else raw
        torch.testing.assert_close(
            torch.load(exported, weights_only=True)["model"]["res3.0.conv1.weight"], source[key]
        )
    resumed = in_process(
        data,
        tmp_path,
        "CLS.EPOCHS",
        "2",
        "CLS.EMA.ENABLED",
        "True",
        "CLS.EMA.DECAY",
        "0.9",
        resume=True,
    )
    torch.testing.assert_close(resumed.ema.module.state_dict()[key], ema[key])
    # A pretraining checkpoint is a MODEL.WEIGHTS too (Detectron2's loader reads it weights-only).
    started = in_process(data, tmp_path / "from_last", "MODEL.WEIGHTS", str(tmp_path / "last.pth"))
    torch.testing.assert_close(started.model.state_dict()[key], raw[key])


def test_training_and_eval_only_start_from_converted_torchvision_weights(data, tmp_path, capsys):
    torch.save(torchvision_resnet18(classes=3).state_dict(), tmp_path / "resnet18.pth")
    converted = tmp_path / "converted.pth"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "convert_pretrained.py"),
            "--source",
            "torchvision",
            "--config-file",
            str(CONFIG),
            str(tmp_path / "resnet18.pth"),
            str(converted),
            "CLS.NUM_CLASSES",
            "3",
        ],
        check=True,
        capture_output=True,
    )
    trainer = in_process(data, tmp_path / "train", "MODEL.WEIGHTS", str(converted))
    printed = capsys.readouterr().out
    assert f"loaded MODEL.WEIGHTS {converted}" in printed and "unexpected (not used): 0" in printed
    missing = (
        printed.split("missing (left at their initialisation): ")[1]
        .split("\n  unexpected")[0]
        .splitlines()
    )
    assert int(missing[0]) == len(missing) - 1 > 0 and all(
        ".routers." in line for line in missing[1:]
    )
    head = torch.load(converted, weights_only=True)["model"]["head.weight"]
    torch.testing.assert_close(trainer.model.head.weight, head)

    evaluation = pretrain(
        data, tmp_path / "eval", "MODEL.WEIGHTS", str(converted), args=["--eval-only"]
    )
    metrics = json.loads(
        [line for line in evaluation.stdout.splitlines() if line.startswith("{")][-1]
    )
    assert metrics["epoch"] == 0 and metrics["top1"] == pytest.approx(trainer.evaluate()["top1"])
    missing_weights = pretrain(
        data,
        tmp_path / "eval",
        "MODEL.WEIGHTS",
        str(tmp_path / "nope.pth"),
        args=["--eval-only"],
        check=False,
    )
    assert missing_weights.returncode != 0
    assert f"MODEL.WEIGHTS = '{tmp_path / 'nope.pth'}' does not exist" in missing_weights.stderr


def test_kill_between_checkpoint_and_log_line_loses_no_line(data, tmp_path):
    in_process(data, tmp_path, "CLS.EPOCHS", "2").train()
    log = tmp_path / "log.jsonl"
    lines = log.read_text().splitlines()
    log.write_text(lines[0] + "\n")  # killed after epoch 2's checkpoint, before its log line
    in_process(data, tmp_path, "CLS.EPOCHS", "3", resume=True).train()
    assert [e["epoch"] for e in epochs(tmp_path)] == [1, 2, 3]
    assert epochs(tmp_path)[1] == json.loads(lines[1])


def test_raw_torchvision_weights_are_refused_with_the_fix(data, tmp_path):
    torch.save(torchvision_resnet18(classes=3).state_dict(), tmp_path / "resnet18.pth")
    result = pretrain(
        data, tmp_path / "out", "MODEL.WEIGHTS", str(tmp_path / "resnet18.pth"), check=False
    )
    assert result.returncode != 0
    every = re.search(r"resnet18.pth leaves (\d+) of the model's (\d+) backbone", result.stderr)
    assert every and every.group(1) == every.group(2)  # none of them loaded
    assert "raw torchvision ResNet state dict: convert it with scripts/convert_pretrained.py" in (
        result.stderr
    )


def test_divergence_in_the_first_epoch_says_no_checkpoint_exists(data, tmp_path):
    result = pretrain(data, tmp_path, "CLS.BASE_LR", "1e12", check=False)
    assert result.returncode != 0
    assert "at epoch 1; no checkpoint was written yet" in result.stderr
    assert "last.pth" not in result.stderr


def test_a_second_run_into_a_busy_output_folder_is_refused(data, tmp_path):
    first = subprocess.Popen(
        pretrain_command(data, tmp_path, "CLS.EPOCHS", "50"), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 300
        while not (tmp_path / ".ddw_run.lock").exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        second = pretrain(data, tmp_path, "CLS.EPOCHS", "1", check=False)
    finally:
        first.kill()
        first.wait()
    assert second.returncode != 0
    assert f"{tmp_path} is in use by a running process (process {first.pid} on" in second.stderr


def test_a_full_disk_stops_pretraining_naming_last_pth_and_leaves_no_partial_file(data, small_disk):
    result = pretrain(data, small_disk, "CLS.EPOCHS", "1", check=False)
    assert result.returncode != 0
    assert f"could not write {small_disk / 'last.pth'}" in result.stderr
    assert "no earlier checkpoint exists" in result.stderr
    assert not list(small_disk.glob("*.incomplete"))


def test_a_collapsed_run_stops_with_one_line_and_the_wiring_log_shows_it(data, tmp_path):
    """Every router starting at 0.05, under the threshold: each stage's last node has no input
    from the first step; the wiring log records it and the run stops after COLLAPSE_PATIENCE."""
    result = pretrain(
        data, tmp_path, "CLS.EPOCHS", "1", "MODEL.DDW.ROUTER_INIT_CHAIN", "0.05",
        "MODEL.DDW.ROUTER_INIT_OTHER", "0.05", "MODEL.DDW.LOG_PERIOD", "1",
        "MODEL.DDW.COLLAPSE_PATIENCE", "2", check=False,
    )  # fmt: skip
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "collapsed" in line]
    assert len(errors) == 1 and "collapsed at step 2: the output of stage res2" in errors[0]
    assert "Traceback" not in result.stderr
    lines = [json.loads(line) for line in (tmp_path / "wiring.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    assert lines[0]["ddw/res5/disconnected"] == 1.0 and lines[0]["ddw/res5/no_input"] > 0
    # Every node after the first reads zeros and outputs relu(0): no gradient reaches a router.
    assert lines[0]["ddw/res5/router_grad_norm"] == 0.0 and lines[0]["loss"] > 1.0
