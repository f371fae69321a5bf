#!/usr/bin/env python
"""Faster R-CNN with a DDW backbone and this project's wiring probe, on Detectron2's own
DefaultTrainer (no ddw_detectron trainer involved).

    python projects/WiringProbe/train_net.py \
        --config-file projects/WiringProbe/configs/wiring_probe_DDW_R_18_FPN_shapes.yaml
"""

import importlib.util
import os
import sys
from pathlib import Path

from detectron2.engine import DefaultTrainer, default_argument_parser, default_setup

from ddw_detectron.compat import build_coco_evaluator

# Importing ddw_detectron registers its backbones and datasets.
from ddw_detectron.config import load_config
from ddw_detectron.engine import launch_from_args, runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wiring_probe import add_wiring_probe_config  # noqa: E402  (also registers WiringProbeRCNN)

if importlib.util.find_spec("ddw_lab"):  # the clone's lab: its generated datasets ddw_shapes_*
    import ddw_lab  # noqa: F401


class Trainer(DefaultTrainer):
    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_coco_evaluator(
            dataset_name, output_dir=output_folder or os.path.join(cfg.OUTPUT_DIR, "inference")
        )


def main(args):
    cfg = load_config(args.config_file, args.opts, extra=[add_wiring_probe_config])
    cfg.freeze()
    default_setup(cfg, args)
    return runner.train(cfg, resume=args.resume, trainer_class=Trainer)


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch_from_args(main, args)
