#!/usr/bin/env python
"""Train and evaluate DDW detectors from Detectron2 LazyConfig (Python) configs.

    python scripts/lazyconfig_train_net.py \
        --config-file configs/COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.py
    python scripts/lazyconfig_train_net.py --config-file CFG.py --eval-only \
        train.init_checkpoint=model.pth
    python scripts/lazyconfig_train_net.py --config-file CFG.py train.max_iter=100 \
        dataloader.train.total_batch_size=2

Detectron2's lazy-config command line: ``key=value`` overrides, ``--resume``, ``--eval-only``,
``--num-gpus`` (CPU processes over gloo without CUDA), ``--num-machines``, ``--machine-rank``,
``--dist-url``. The model's DDW stages report their wiring statistics as in ``train_net.py``.
"""

import logging

from detectron2.config import LazyConfig, instantiate
from detectron2.engine import (
    AMPTrainer,
    SimpleTrainer,
    default_argument_parser,
    default_setup,
    default_writers,
    hooks,
)
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm

import ddw_detectron  # noqa: F401  (registers the DDW backbones and the demo datasets)
from ddw_detectron.engine import (
    DDWCheckpointer,
    WiringHook,
    check_replicas_agree,
    create_ddp_model,
    launch_from_args,
    runner,
)

logger = logging.getLogger("ddw_detectron")


def do_test(cfg, model):
    if "evaluator" not in cfg.dataloader:
        return {}
    results = inference_on_dataset(
        model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator)
    )
    print_csv_format(results)
    runner.print_summary(results)
    return results


def do_train(args, cfg):
    model = instantiate(cfg.model)
    model.to(cfg.train.device)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    train_loader = instantiate(cfg.dataloader.train)
    model = create_ddp_model(model)
    trainer = (AMPTrainer if cfg.train.amp.enabled else SimpleTrainer)(
        model, train_loader, optimizer
    )
    checkpointer = DDWCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    main = comm.is_main_process()
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
            hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if main else None,
            hooks.EvalHook(cfg.train.eval_period, lambda: do_test(cfg, model)),
            WiringHook(period=cfg.train.log_period, eval_period=cfg.train.eval_period),
            hooks.PeriodicWriter(
                default_writers(cfg.train.output_dir, cfg.train.max_iter),
                period=cfg.train.log_period,
            )
            if main
            else None,
        ]
    )
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
    start_iter = trainer.iter + 1 if args.resume and checkpointer.has_checkpoint() else 0
    trainer.train(start_iter, cfg.train.max_iter)
    check_replicas_agree(model)


def main(args):
    cfg = LazyConfig.load(args.config_file)
    cfg = LazyConfig.apply_overrides(cfg, args.opts)
    default_setup(cfg, args)
    if args.eval_only:
        model = instantiate(cfg.model)
        model.to(cfg.train.device)
        model = create_ddp_model(model)
        DDWCheckpointer(model).load(cfg.train.init_checkpoint)
        return do_test(cfg, model)
    do_train(args, cfg)


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch_from_args(main, args)
