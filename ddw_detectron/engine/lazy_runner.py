"""What ``scripts/lazyconfig_train_net.py`` does with a LazyConfig (``model``, ``dataloader``,
``optimizer``, ``lr_multiplier``, ``train``, as Detectron2's LazyConfig baselines lay them out):
train with Detectron2's ``SimpleTrainer`` or ``AMPTrainer`` and its hooks, or only evaluate.

Every ``train.*`` key of Detectron2's ``common/train.py`` is read: ``output_dir``,
``init_checkpoint``, ``max_iter``, ``amp.enabled``, ``ddp.*`` (``broadcast_buffers``,
``find_unused_parameters``, ``fp16_compression``), ``checkpointer.*`` (``period``,
``max_to_keep``), ``eval_period``, ``log_period``, ``device``. Checkpoints go through
:class:`~ddw_detectron.checkpoint.DDWCheckpointer` (safe loading, atomic saves).
"""

from typing import Dict

from detectron2.config import instantiate
from detectron2.engine import AMPTrainer, SimpleTrainer, default_writers, hooks
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm

from ..checkpoint import DDWCheckpointer
from ..utils.collapse import DEFAULT_PATIENCE, DEFAULT_SHARE, CollapseMonitor
from ..utils.run_lock import lock_output_dir
from .hooks import WiringHook
from .runner import print_summary
from .trainer import check_replicas_agree, create_ddp_model

__all__ = ["lazy_evaluate", "lazy_train"]


def _model(cfg):
    model = instantiate(cfg.model)
    model.to(cfg.train.device)
    return model


def lazy_evaluate(cfg, model=None) -> Dict:
    """Evaluate ``model`` (default: ``cfg.model`` with ``train.init_checkpoint``) on
    ``dataloader.test`` with ``dataloader.evaluator``; print and return the results."""
    if model is None:
        model = _model(cfg)
        DDWCheckpointer(model).load(cfg.train.init_checkpoint)
    if "evaluator" not in cfg.dataloader:
        return {}
    evaluator = instantiate(cfg.dataloader.evaluator)
    results = inference_on_dataset(model, instantiate(cfg.dataloader.test), evaluator)
    if comm.is_main_process():
        print_csv_format(results)
    print_summary(results)
    return results


def _hooks(cfg, model, checkpointer):
    train, main = cfg.train, comm.is_main_process()
    checkpoints = hooks.PeriodicCheckpointer(checkpointer, **train.checkpointer)
    writers = default_writers(train.output_dir, train.max_iter)
    return [
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        checkpoints if main else None,
        hooks.EvalHook(train.eval_period, lambda: lazy_evaluate(cfg, model)),
        WiringHook(
            period=train.log_period,
            eval_period=train.eval_period,
            collapse=CollapseMonitor(DEFAULT_SHARE, DEFAULT_PATIENCE),
        ),
        hooks.PeriodicWriter(writers, period=train.log_period) if main else None,
    ]


def lazy_train(cfg, resume: bool = False) -> None:
    """Train ``cfg`` from ``train.init_checkpoint``, or with ``resume`` from the last
    checkpoint in ``train.output_dir``."""
    if comm.is_main_process():
        lock_output_dir(cfg.train.output_dir)
    model = _model(cfg)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    loader = instantiate(cfg.dataloader.train)
    model = create_ddp_model(model, **cfg.train.ddp)
    trainer = (AMPTrainer if cfg.train.amp.enabled else SimpleTrainer)(model, loader, optimizer)
    checkpointer = DDWCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    trainer.register_hooks(_hooks(cfg, model, checkpointer))
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=resume)
    start = trainer.iter + 1 if resume and checkpointer.has_checkpoint() else 0
    trainer.train(start, cfg.train.max_iter)
    check_replicas_agree(model)
