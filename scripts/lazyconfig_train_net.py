#!/usr/bin/env python
"""Train or evaluate a DDW detector from a LazyConfig (Python) config: the ``.py`` twin of every
COCO config, or a project's own.

    python scripts/lazyconfig_train_net.py \
        --config-file configs/COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.py
    python scripts/lazyconfig_train_net.py --config-file CFG.py train.max_iter=100 \
        train.device=cpu dataloader.train.total_batch_size=2 train.ddp.fp16_compression=True
    python scripts/lazyconfig_train_net.py --config-file CFG.py --eval-only \
        train.init_checkpoint=output/model_final.pth

The command line is Detectron2's (``--resume``, ``--eval-only``, ``--num-gpus`` (CPU processes
over gloo without CUDA), ``--num-machines``, ``--machine-rank``, ``--dist-url``); overrides are
LazyConfig's ``dotted.key=value``. What the run reads of ``train.*``:
``ddw_detectron.engine.lazy_runner``. A LazyConfig file is Python and runs as code when it is
loaded: use configs you trust.
"""

import importlib.util

from detectron2.config import LazyConfig
from detectron2.engine import default_argument_parser

from ddw_detectron.engine import launch_from_args, setup_run
from ddw_detectron.engine.lazy_runner import lazy_evaluate, lazy_train
from ddw_detectron.errors import exit_on_user_errors

if importlib.util.find_spec("ddw_lab"):  # the clone's lab: its generated datasets ddw_shapes_*
    import ddw_lab  # noqa: F401


def main(args):
    with exit_on_user_errors("lazyconfig_train_net"):
        cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
        setup_run(cfg, args, cfg.train.output_dir)
        if args.eval_only:
            return lazy_evaluate(cfg)
        lazy_train(cfg, resume=args.resume)


if __name__ == "__main__":
    parser = default_argument_parser(epilog=__doc__.split("\n\n", 1)[1])
    launch_from_args(main, parser.parse_args())
