"""Shared test helpers: configs for each DDW family, tiny settings, running a script, killing
a run midway."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

from detectron2.config import get_cfg

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
