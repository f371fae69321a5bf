"""What a detection ``train_net.py`` does once its command line is parsed: train (or only
evaluate) a detector, write the wiring pictures and ``final_results.json``, print the summary
lines. ``scripts/train_net.py`` and the example projects all run through here."""

import json
import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Type

from detectron2.engine import DefaultTrainer
from detectron2.utils import comm

from ..checkpoint import DDWCheckpointer, consumer_facts
from ..utils.wiring_report import write_wiring_pictures as write_pictures
from .trainer import DDWTrainer, check_datasets, check_replicas_agree

logger = logging.getLogger("ddw_detectron")

# Detectron2's evaluator task -> the word the summary line starts with.
SUMMARY_TASKS = {"bbox": "box", "segm": "mask"}


def summary_lines(results: Optional[Dict]) -> List[str]:
    """One line per COCO task in ``results`` (an evaluator's output), e.g.
    ``box AP = 70.12, AP50 = 91.30, AP75 = 83.60``; none for empty or missing results."""
    lines = []
    for task, word in SUMMARY_TASKS.items():
        metrics = results.get(task) if isinstance(results, dict) else None
        if metrics:
            ap, ap50, ap75 = (metrics[k] for k in ("AP", "AP50", "AP75"))
            lines.append(f"{word} AP = {ap:.2f}, AP50 = {ap50:.2f}, AP75 = {ap75:.2f}")
    return lines


def print_summary(results: Optional[Dict]) -> None:
    """Print :func:`summary_lines` on the main process."""
    if comm.is_main_process():
        for line in summary_lines(results):
            print(line, flush=True)


def write_wiring_pictures(cfg, model) -> None:
    """Wiring heatmaps of the first 4 test images into OUTPUT_DIR/wiring (main process)."""
    if not cfg.DATASETS.TEST or not comm.is_main_process():
        return
    folder = Path(cfg.OUTPUT_DIR) / "wiring"
    written = write_pictures(cfg, model.module if hasattr(model, "module") else model, folder)
    logger.info(f"wiring pictures of {written} images written to {folder}")


def evaluate(cfg, resume: bool = False) -> Dict:
    """Load ``cfg.MODEL.WEIGHTS`` (or, with ``resume``, OUTPUT_DIR's last checkpoint), evaluate
    on ``cfg.DATASETS.TEST``, write the wiring pictures and print the summary lines."""
    check_datasets(cfg)
    model = DDWTrainer.build_model(cfg)
    checkpointer = DDWCheckpointer(model, save_dir=cfg.OUTPUT_DIR, facts=consumer_facts(cfg))
    checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=resume)
    results = DDWTrainer.test(cfg, model)
    write_wiring_pictures(cfg, model)
    print_summary(results)
    return results


def train(
    cfg, resume: bool = False, trainer_class: Type[DefaultTrainer] = DDWTrainer
) -> Optional[Dict]:
    """Train with ``trainer_class`` (a Detectron2 ``DefaultTrainer``), resuming from OUTPUT_DIR
    when asked; then check that the replicas agree, write the wiring pictures, print the summary
    lines and write the last evaluation's results (returned; None without a test set) to
    OUTPUT_DIR/final_results.json."""
    trainer = trainer_class(cfg)
    trainer.resume_or_load(resume=resume)
    trainer.train()
    # DefaultTrainer.train() returns the results only when TEST.EXPECTED_RESULTS is set.
    results = getattr(trainer, "_last_eval_results", None)
    check_replicas_agree(trainer.model)
    write_wiring_pictures(cfg, trainer.model)
    print_summary(results)
    if comm.is_main_process() and results:
        with open(os.path.join(cfg.OUTPUT_DIR, "final_results.json"), "w") as f:
            json.dump(results, f, indent=2)
    return results
