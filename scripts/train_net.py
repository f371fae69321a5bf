#!/usr/bin/env python
"""Train and evaluate DDW detectors with Detectron2's engine.

    python scripts/train_net.py \
        --config-file configs/COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.yaml
    python scripts/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS model_final.pth
    python scripts/train_net.py --config-file CFG --num-gpus 8     # 8 GPUs (NCCL)
    python scripts/train_net.py --config-file CFG --num-gpus 2 MODEL.DEVICE cpu  # 2 CPU (gloo)
    python scripts/train_net.py --config-file CFG --dataset mine=train.json:images/ \
        DATASETS.TRAIN "('mine',)" DATASETS.TEST "()"

The command line is Detectron2's (``--resume``, ``--num-machines``, ``--machine-rank``,
``--dist-url``, trailing ``KEY VALUE`` overrides). Without CUDA, ``--num-gpus N`` starts N
CPU processes. ``--dataset NAME=annotations.json:images/`` (repeatable) registers a COCO-format
json and its image folder as ``NAME`` for ``DATASETS.TRAIN``/``TEST``. ``--check-dataset`` runs
the quick form of scripts/check_dataset.py on the training datasets first and stops if a problem
would break training.
"""

import importlib.util

from detectron2.engine import default_argument_parser
from detectron2.utils import comm

from ddw_detectron.config import load_config
from ddw_detectron.data.check import check_training_datasets
from ddw_detectron.data.own import DATASET_ARGUMENT_HELP, register_dataset_arguments
from ddw_detectron.engine import launch_from_args, runner, setup_run
from ddw_detectron.errors import exit_on_user_errors

if importlib.util.find_spec("ddw_lab"):  # the clone's lab: its generated datasets ddw_shapes_*
    import ddw_lab  # noqa: F401


def setup(args):
    cfg = load_config(args.config_file, args.opts)
    cfg.freeze()
    setup_run(cfg, args, cfg.OUTPUT_DIR)
    return cfg


def main(args):
    with exit_on_user_errors("train_net"):
        register_dataset_arguments(args.dataset)
        return train_or_evaluate(args)


def train_or_evaluate(args):
    cfg = setup(args)
    if args.check_dataset and comm.is_main_process():
        check_training_datasets(cfg.DATASETS.TRAIN)
    if args.eval_only:
        return runner.evaluate(cfg, resume=args.resume)
    return runner.train(cfg, resume=args.resume)


if __name__ == "__main__":
    parser = default_argument_parser()
    parser.add_argument(
        "--check-dataset",
        action="store_true",
        help="check the training datasets first (files, sizes, boxes, ids; image headers only) "
        "and stop on errors",
    )
    parser.add_argument(
        "--dataset", action="append", default=[], metavar="NAME=JSON:IMAGES",
        help=DATASET_ARGUMENT_HELP,
    )  # fmt: skip
    args = parser.parse_args()
    print("Command Line Args:", args)
    launch_from_args(main, args)
