#!/usr/bin/env python
"""Mask R-CNN with a DDW backbone and this project's LightMaskHead.

python projects/DDWMaskRCNN/train_net.py \
    --config-file projects/DDWMaskRCNN/configs/mask_rcnn_DDW_R_18_FPN_light_shapes.yaml
"""

import importlib.util
import sys
from pathlib import Path

from detectron2.engine import default_argument_parser, default_setup

# Importing ddw_detectron registers its backbones and datasets.
from ddw_detectron.config import load_config
from ddw_detectron.engine import launch_from_args, runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ddw_mask  # noqa: E402,F401  (registers LightMaskHead)

if importlib.util.find_spec("ddw_lab"):  # the clone's lab: its generated datasets ddw_shapes_*
    import ddw_lab  # noqa: F401


def main(args):
    cfg = load_config(args.config_file, args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    return runner.train(cfg, resume=args.resume)


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch_from_args(main, args)
