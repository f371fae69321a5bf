#!/usr/bin/env python
"""Pretrain a DDW backbone on ImageNet (ImageFolder layout) and export it for Detectron2.

    python scripts/pretrain_imagenet.py --config-file configs/ImageNet/DDW_R_50.yaml \
        CLS.DATA_ROOT /data/imagenet
    torchrun --nproc_per_node 8 scripts/pretrain_imagenet.py \
        --config-file configs/ImageNet/DDW_R_50.yaml
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --master_port 29500 --nproc_per_node 8 \
        scripts/pretrain_imagenet.py --config-file ...
    python scripts/pretrain_imagenet.py --config-file CFG --resume   # after the last epoch
    python scripts/pretrain_imagenet.py --config-file CFG MODEL.WEIGHTS w.pth   # from weights
    python scripts/pretrain_imagenet.py --config-file CFG --eval-only MODEL.WEIGHTS w.pth

At the end, OUTPUT_DIR/backbone_detectron2.pth goes to train_net.py as MODEL.WEIGHTS.
"""

import argparse
import json
import logging

from detectron2.utils.logger import setup_logger

from ddw_detectron.classification import Pretrainer, add_classification_config
from ddw_detectron.config import load_config
from ddw_detectron.errors import exit_on_user_errors


def setup(args):
    cfg = load_config(args.config_file, args.opts, extra=[add_classification_config])
    cfg.freeze()
    return cfg


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config-file", required=True, metavar="FILE", help="a pretraining config (CLS keys)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last.pth")
    parser.add_argument(
        "--eval-only",
        action="store_true",
        help="print top-1/top-5 on val/ of MODEL.WEIGHTS if set (and not --resume), "
        "else of OUTPUT_DIR/last.pth",
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, KEY VALUE ...")
    args = parser.parse_args(argv)
    with exit_on_user_errors("pretrain_imagenet", FileNotFoundError, ValueError):
        cfg = setup(args)
        setup_logger(name="ddw_detectron")
        logging.getLogger("ddw_detectron").setLevel(logging.INFO)
        from_last = args.resume or (args.eval_only and not cfg.MODEL.WEIGHTS)
        trainer = Pretrainer(cfg, resume=from_last)
        if args.eval_only:
            if trainer.start_epoch == 0 and not cfg.MODEL.WEIGHTS:
                raise FileNotFoundError(
                    f"--eval-only needs MODEL.WEIGHTS or a checkpoint at {trainer.checkpoint_path}"
                )
            result = trainer.evaluate()
            if trainer.rank == 0:
                print(json.dumps({"epoch": trainer.start_epoch, **result}), flush=True)
        else:
            trainer.train()


if __name__ == "__main__":
    main()
