"""The training jobs the tooling runs, each in a fresh process (:func:`.process.run_in_child`)
and each ending with its ``result.json``: a classifier trained by the classification trainer, a
detector by Detectron2's engine. Both resume from their output folder's last checkpoint."""

import argparse
import json
import logging
from pathlib import Path
from typing import Dict, List, Sequence

from ddw_detectron.config import load_config
from ddw_detectron.utils.atomic import atomic_write_text

__all__ = [
    "box_metrics",
    "classification_cfg",
    "detect",
    "detection_cfg",
    "detection_train_seconds",
    "pretrain",
    "write_result",
]


def write_result(path: str, result: Dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=2))


def log_lines(folder: Path) -> List[Dict]:
    return [json.loads(line) for line in (Path(folder) / "log.jsonl").read_text().splitlines()]


def classification_cfg(config: str, opts: Sequence[str]):
    from ddw_detectron.classification import add_classification_config

    cfg = load_config(config, list(opts), extra=[add_classification_config])
    cfg.freeze()
    return cfg


def pretrain(config: str, opts: Sequence[str], result_path: str) -> None:
    """Train a classifier (resuming from ``OUTPUT_DIR/last.pth``); the result: the last epoch's
    ``top1``, ``val_loss`` and ``val_disconnected`` and the training time (``train_seconds``)."""
    from detectron2.utils.logger import setup_logger

    from ddw_detectron.classification import Pretrainer

    cfg = classification_cfg(config, opts)
    setup_logger(name="ddw_detectron")
    logging.getLogger("ddw_detectron").setLevel(logging.INFO)
    Pretrainer(cfg, resume=True).train()
    lines = log_lines(Path(cfg.OUTPUT_DIR))
    last = lines[-1]
    write_result(
        result_path,
        {
            "top1": last["top1"],
            "val_loss": last["val_loss"],
            "val_disconnected": last.get("val_disconnected", 0.0),
            "train_seconds": float(sum(line["seconds"] for line in lines)),
        },
    )


def detection_cfg(config: str, opts: Sequence[str]):
    cfg = load_config(config, list(opts))
    cfg.freeze()
    return cfg


def box_metrics(results: Dict) -> Dict[str, float]:
    """Box AP, AP50, AP75 and per-class AP (``AP-<class>``) of Detectron2's COCO evaluation."""
    bbox = results["bbox"]
    return {k: float(v) for k, v in bbox.items() if k in ("AP", "AP50", "AP75") or k[:3] == "AP-"}


def detection_train_seconds(metrics: Path) -> float:
    """Training time of a Detectron2 run from its ``metrics.json``: each logged iteration
    time (a median over the logging window) times the iterations since the previous line."""
    total, previous = 0.0, -1
    for line in Path(metrics).read_text().splitlines():
        entry = json.loads(line)
        if "time" in entry and "iteration" in entry:
            total += entry["time"] * (entry["iteration"] - previous)
            previous = entry["iteration"]
    return total


def detect(config: str, opts: Sequence[str], result_path: str) -> None:
    """Train and evaluate a detector with Detectron2's engine (``runner.train``, resuming from
    ``OUTPUT_DIR``); the result: box AP figures on ``DATASETS.TEST`` and the training time."""
    from detectron2.engine import default_setup

    from ddw_detectron.engine import runner

    cfg = detection_cfg(config, opts)
    default_setup(cfg, argparse.Namespace(config_file=config, opts=list(opts), resume=True))
    results = runner.train(cfg, resume=True)
    seconds = detection_train_seconds(Path(cfg.OUTPUT_DIR) / "metrics.json")
    write_result(result_path, {**box_metrics(results), "train_seconds": seconds})
