"""Shared test helpers: configs for each DDW family, tiny settings, running a script, killing
a run midway, a torchvision network and photographs to compare against."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import numpy as np
import torch
import torchvision
from detectron2.config import get_cfg
from PIL import Image

import ddw_detectron
from ddw_detectron.modeling import FAMILIES

ROOT = Path(__file__).resolve().parent.parent
ALL_STAGES = {name: list(family.stage_names) for name, family in FAMILIES.items()}


# Overrides that make a detection config train and evaluate in seconds on the CPU: the tiny
# shapes dataset, 2 images per batch, no learning-rate steps, every detection scored.
# fmt: off
TINY_DETECTION = [
    "DATASETS.TRAIN", "('ddw_shapes_tiny',)", "DATASETS.TEST", "('ddw_shapes_tiny',)",
    "SOLVER.IMS_PER_BATCH", "2", "SOLVER.WARMUP_ITERS", "1", "SOLVER.STEPS", "()",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",
]
# The demo pipeline at tiny sizes: R-18, a few small pretraining batches, 4 detection iterations.
TINY_PRETRAINING = [
    "MODEL.RESNETS.DEPTH", "18", "CLS.EPOCHS", "2", "CLS.BATCH_SIZE", "4", "CLS.INPUT_SIZE", "32",
    "CLS.RESIZE_SIZE", "32", "CLS.WARMUP_EPOCHS", "1",
]
TINY_DEMO_DETECTION = [
    *TINY_DETECTION, "MODEL.RESNETS.DEPTH", "18", "SOLVER.MAX_ITER", "4",
    "SOLVER.CHECKPOINT_PERIOD", "2",
]
# fmt: on


def set_key(cfg, key, value):
    *path, last = key.split(".")
    node = cfg
    for part in path:
        node = node[part]
    node[last] = value


def make_cfg(family="resnet", dynamic=True, **overrides):
    """A CPU config of a small model of ``family`` with BN (trainable) norms, no freezing."""
    cfg = get_cfg()
    ddw_detectron.add_ddw_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.REGNET.PRESET = "RegNetX-400MF"
    cfg.MODEL.DDW.DYNAMIC_STAGES = ALL_STAGES[family] if dynamic else []
    for key, value in overrides.items():
        set_key(cfg, key, value)
    return cfg


def python_command(path, *args) -> List[str]:
    """``python <path> <args>``: ``path`` relative to the repository root, arguments as text."""
    return [sys.executable, str(ROOT / path), *map(str, args)]


def _environment(env) -> dict:
    """This process's environment with the variables of ``env`` set on top (values as text)."""
    return {**os.environ, **{key: str(value) for key, value in (env or {}).items()}}


def run_python(path, *args, env=None, timeout=900) -> subprocess.CompletedProcess:
    """Run :func:`python_command` from the repository root with its output captured; ``env``:
    variables set on top of this process's."""
    return subprocess.run(
        python_command(path, *args),
        capture_output=True,
        text=True,
        env=_environment(env),
        timeout=timeout,
        cwd=ROOT,
    )


def run_until(command, env, marker: Path) -> None:
    """Start ``command`` (``env``: variables set on top of this process's) and SIGKILL its whole
    process group once ``marker`` exists."""
    process = subprocess.Popen(
        command,
        env=_environment(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 600
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, f"{command[1]} ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def torchvision_resnet18(classes: int) -> torch.nn.Module:
    """Random weights with non-trivial norm statistics and affine parameters."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=classes)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def photos() -> torch.Tensor:
    """Two scikit-image photographs, ``[2, 3, 96, 96]`` RGB in 0-255."""
    from skimage import data

    images = [
        Image.fromarray(getattr(data, name)()).convert("RGB").resize((96, 96))
        for name in ("astronaut", "coffee")
    ]
    return torch.stack(
        [torch.from_numpy(np.array(image)).permute(2, 0, 1).float() for image in images]
    )


# The start near the base network, as for fine-tuning from static weights
# (configs/ImageNet/DDW_R_50_from_torchvision.yaml).
NEAR_STATIC = ["MODEL.DDW.ROUTER_INIT_CHAIN", "0.99", "MODEL.DDW.ROUTER_INIT_OTHER", "0.05"]


def tiny_coco(root: Path):
    """``root/coco``: two images and annotations in the layout of coco_2017_train."""
    from PIL import Image

    (root / "coco" / "annotations").mkdir(parents=True)
    (root / "coco" / "train2017").mkdir()
    images, annotations = [], []
    for i in range(2):
        Image.new("RGB", (128, 96), (100 + 50 * i, 80, 60)).save(
            root / "coco" / "train2017" / f"{i}.jpg"
        )
        images.append({"id": i + 1, "file_name": f"{i}.jpg", "width": 128, "height": 96})
        polygon = [10.0, 10.0, 60.0, 10.0, 60.0, 70.0, 10.0, 70.0]
        annotations.append(
            {
                "id": i + 1,
                "image_id": i + 1,
                "category_id": 1,
                "bbox": [10.0, 10.0, 50.0, 60.0],
                "segmentation": [polygon],
                "area": 3000.0,
                "iscrowd": 0,
            }
        )
    from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES

    categories = [{"id": c["id"], "name": c["name"]} for c in COCO_CATEGORIES if c["isthing"]]
    (root / "coco" / "annotations" / "instances_train2017.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
