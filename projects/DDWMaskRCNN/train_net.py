#!/usr/bin/env python
"""Mask R-CNN with a DDW backbone and this project's LightMaskHead.

    python projects/DDWMaskRCNN/train_net.py --config-file projects/DDWMaskRCNN/configs/mask_rcnn_DDW_R_18_FPN_light_shapes.yaml
"""

import sys
from pathlib import Path

from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup

import ddw_detectron  # registers the DDW backbones and the demo datasets
from ddw_detectron.engine import DDWTrainer, launch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ddw_mask  # noqa: E402,F401  (registers LightMaskHead)


def main(args):
    cfg = get_cfg()
    ddw_detectron.add_ddw_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    trainer = DDWTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    trainer.train()
    results = getattr(trainer, "_last_eval_results", {})
    for task in ("bbox", "segm"):
        if task in results:
            print(f"{task} AP = {results[task]['AP']:.2f}", flush=True)


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank, dist_url=args.dist_url, args=(args,))
