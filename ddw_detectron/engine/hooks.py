"""Detectron2 hooks of ddw_detectron."""

import warnings
from typing import Optional

import torch
from detectron2.engine import HookBase
from detectron2.utils import comm

from ..data.unreadable import UnreadableImageError, format_files, read_exclusion_log
from ..layers import collect_wiring, router_grad_norms, set_threshold_warmup, sparsity_loss
from ..utils.collapse import CollapseMonitor
from ..utils.visualize import figure_to_array, wiring_figure
from ..utils.wiring_stats import telemetry

__all__ = ["ThresholdWarmupHook", "UnreadableImagesHook", "WiringHook", "attach_sparsity_loss"]


class WiringHook(HookBase):
    """After every evaluation (``eval_period``) and at the end, a heatmap picture of each
    stage's wiring goes to the ``EventStorage`` as ``ddw/wiring/<stage>``. The statistics
    ``ddw/<stage>/*`` come from the backbone itself in any trainer (``MODEL.DDW.LOG_PERIOD``);
    this hook puts them only where the backbone could not, a compiled backbone (whose graph has
    no room for the storage), every ``period`` iterations and at the last. At those iterations
    it also puts each stage's router gradient norm (``ddw/<stage>/router_grad_norm``) and lets
    ``collapse`` (a :class:`CollapseMonitor`) stop a run whose wiring has collapsed.
    """

    def __init__(
        self, period: int = 20, eval_period: int = 0, collapse: Optional[CollapseMonitor] = None
    ):
        if period < 1:
            raise ValueError(f"MODEL.DDW.LOG_PERIOD = {period} is invalid: must be >= 1")
        self._period = period
        self._eval_period = eval_period
        self._collapse = collapse

    @classmethod
    def from_config(cls, cfg) -> "WiringHook":
        """Every ``MODEL.DDW.LOG_PERIOD`` iterations, pictures after each ``TEST.EVAL_PERIOD``,
        the collapse monitor of ``MODEL.DDW.COLLAPSE_*``."""
        return cls(
            period=cfg.MODEL.DDW.LOG_PERIOD,
            eval_period=cfg.TEST.EVAL_PERIOD,
            collapse=CollapseMonitor.from_config(cfg),
        )

    def _model(self):
        model = self.trainer.model
        return model.module if hasattr(model, "module") else model

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if next_iter % self._period == 0 or next_iter == self.trainer.max_iter:
            wiring = collect_wiring(self._model())
            scalars = telemetry(wiring)
            latest = self.trainer.storage.latest()
            put = [k for k in scalars if latest.get(k, (None, -1))[1] == self.trainer.iter]
            if scalars and not put:
                self.trainer.storage.put_scalars(**scalars, smoothing_hint=False)
            norms = router_grad_norms(self._model())
            if norms:
                self.trainer.storage.put_scalars(
                    **{f"ddw/{stage}/router_grad_norm": v for stage, v in norms.items()},
                    smoothing_hint=False,
                )
            if self._collapse is not None and wiring:
                self._collapse.check(scalars, f"iteration {next_iter}")
        if (
            self._eval_period > 0
            and next_iter % self._eval_period == 0
            and next_iter != self.trainer.max_iter
        ):
            self._put_pictures()

    def after_train(self):
        if self.trainer.iter + 1 >= self.trainer.max_iter:
            self._put_pictures()

    def _put_pictures(self):
        if not comm.is_main_process():
            return
        wiring = collect_wiring(self._model())
        for stage, adjacency in wiring.items():
            array = figure_to_array(
                wiring_figure({stage: adjacency}, 0, title=f"iter {self.trainer.iter + 1}")
            )
            image = torch.from_numpy(array).permute(2, 0, 1).float() / 255.0
            self.trainer.storage.put_image(f"ddw/wiring/{stage}", image)


class ThresholdWarmupHook(HookBase):
    """Before each of the first ``warmup_iters`` iterations (``MODEL.DDW.THRESHOLD_WARMUP_ITERS``)
    the DAG stages' training threshold is set to ``THRESHOLD * iter / warmup_iters``; from then on
    it is ``THRESHOLD`` (:func:`~ddw_detectron.layers.set_threshold_warmup`). Resumes at the
    iteration it left."""

    def __init__(self, warmup_iters: int):
        if warmup_iters < 0:
            raise ValueError(
                f"MODEL.DDW.THRESHOLD_WARMUP_ITERS = {warmup_iters} is invalid: must be >= 0"
            )
        self._warmup_iters = warmup_iters

    def before_step(self):
        if self.trainer.iter <= self._warmup_iters:
            set_threshold_warmup(self.trainer.model, self.trainer.iter, self._warmup_iters)


class UnreadableImagesHook(HookBase):
    """Every ``period`` iterations and at the end: the number of training images excluded as
    unreadable so far (the log of :class:`~ddw_detectron.data.unreadable.ExcludeUnreadable`) goes
    to the ``EventStorage`` as ``data/unreadable_images``; once it exceeds ``max_share`` of the
    ``dataset_size()`` training images, training stops with an error that lists the files."""

    def __init__(self, log_path: str, dataset_size, max_share: float, period: int = 20):
        self._log_path = log_path
        self._dataset_size = dataset_size
        self._max_share = max_share
        self._period = period

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if next_iter % self._period == 0 or next_iter == self.trainer.max_iter:
            self.check()

    def check(self) -> None:
        excluded = read_exclusion_log(self._log_path)
        storage = self.trainer.storage
        storage.put_scalar("data/unreadable_images", len(excluded), smoothing_hint=False)
        if not excluded:
            return
        size = self._dataset_size()
        if len(excluded) > self._max_share * size:
            raise UnreadableImageError(
                "\n".join(
                    [
                        f"{len(excluded)} of {size} training images are unreadable, more than "
                        f"DATALOADER.MAX_UNREADABLE_IMAGE_SHARE = {self._max_share}; fix or remove "
                        "them "
                        "(scripts/check_dataset.py lists every problem), then resume with "
                        "--resume:",
                        *format_files(excluded),
                    ]
                )
            )


def attach_sparsity_loss(model: torch.nn.Module, weight: float):
    """Make ``model`` (any Detectron2 meta-architecture returning a loss dict in training) add
    ``loss_ddw_sparsity = weight * sum of its DAG stages' L1 of edge weights``."""

    def add_loss(module, inputs, output):
        if module.training and isinstance(output, dict):
            loss = sparsity_loss(module)
            if loss is not None:
                output = dict(output)
                output["loss_ddw_sparsity"] = weight * loss
        return output

    return model.register_forward_hook(add_loss)


def __getattr__(name: str):
    if name == "SkippedImagesHook":
        warnings.warn(
            "SkippedImagesHook is renamed UnreadableImagesHook", FutureWarning, stacklevel=2
        )
        return UnreadableImagesHook
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
