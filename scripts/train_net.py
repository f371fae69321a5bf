#!/usr/bin/env python
"""Train and evaluate DDW detectors with Detectron2's engine.

    python scripts/train_net.py \
        --config-file configs/COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.yaml
    python scripts/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS model_final.pth
    python scripts/train_net.py --config-file CFG --num-gpus 8     # 8 GPUs (NCCL)
    python scripts/train_net.py --config-file CFG --num-gpus 2 MODEL.DEVICE cpu  # 2 CPU (gloo)

The command line is Detectron2's (``--resume``, ``--num-machines``, ``--machine-rank``,
``--dist-url``, trailing ``KEY VALUE`` overrides). Without CUDA, ``--num-gpus N`` starts N
CPU processes. ``--check-dataset`` runs the quick form of scripts/check_dataset.py on the
training datasets first and stops if a problem would break training.
"""

import json
import logging
import os
import sys
from pathlib import Path

from detectron2.engine import default_argument_parser, default_setup
from detectron2.utils import comm

from ddw_detectron.config import load_config
from ddw_detectron.data.check import DatasetCheckError, check_training_datasets
from ddw_detectron.engine import (
    DatasetNotFoundError,
    DDWCheckpointer,
    DDWTrainer,
    check_datasets,
    check_replicas_agree,
    launch_from_args,
)
from ddw_detectron.utils.wiring_report import write_wiring_pictures as wiring_pictures

logger = logging.getLogger("ddw_detectron")


def setup(args):
    cfg = load_config(args.config_file, args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def write_wiring_pictures(cfg, model):
    """Wiring heatmaps of the first 4 test images into OUTPUT_DIR/wiring (main process)."""
    if not cfg.DATASETS.TEST or not comm.is_main_process():
        return
    folder = Path(cfg.OUTPUT_DIR) / "wiring"
    written = wiring_pictures(cfg, model.module if hasattr(model, "module") else model, folder)
    logger.info(f"wiring pictures of {written} images written to {folder}")


def summarise(results):
    bbox = results.get("bbox") if isinstance(results, dict) else None
    if bbox and comm.is_main_process():
        print(
            f"box AP = {bbox['AP']:.2f}, AP50 = {bbox['AP50']:.2f}, AP75 = {bbox['AP75']:.2f}",
            flush=True,
        )


def main(args):
    try:
        return train_or_evaluate(args)
    except (DatasetNotFoundError, DatasetCheckError) as exc:
        sys.exit(f"train_net: error: {exc}")


def train_or_evaluate(args):
    cfg = setup(args)
    if args.check_dataset and comm.is_main_process():
        check_training_datasets(cfg.DATASETS.TRAIN)
    if args.eval_only:
        check_datasets(cfg)
        model = DDWTrainer.build_model(cfg)
        DDWCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        results = DDWTrainer.test(cfg, model)
        write_wiring_pictures(cfg, model)
        summarise(results)
        return results
    trainer = DDWTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    trainer.train()
    # Detectron2's DefaultTrainer.train() returns the results only when EXPECTED_RESULTS is set.
    results = getattr(trainer, "_last_eval_results", None)
    check_replicas_agree(trainer.model)
    write_wiring_pictures(cfg, trainer.model)
    summarise(results)
    if comm.is_main_process() and results:
        with open(os.path.join(cfg.OUTPUT_DIR, "final_results.json"), "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    parser = default_argument_parser()
    parser.add_argument(
        "--check-dataset",
        action="store_true",
        help="check the training datasets first (files, sizes, boxes, ids; image headers only) "
        "and stop on errors",
    )
    args = parser.parse_args()
    print("Command Line Args:", args)
    launch_from_args(main, args)
