"""Detectron2 hooks of ddw_detectron."""

import torch
from detectron2.engine import HookBase
from detectron2.utils import comm

from ..layers import collect_wiring, sparsity_loss
from ..utils.visualize import figure_to_array, wiring_figure
from ..utils.wiring_stats import wiring_statistics

__all__ = ["WiringHook", "attach_sparsity_loss"]


class WiringHook(HookBase):
    """Every ``period`` iterations, per-stage wiring statistics of the last training batch go to
    the ``EventStorage`` as ``ddw/<stage>/{mean_edge_weight,kept,diversity}`` (so they reach
    ``metrics.json`` and TensorBoard); after every evaluation (``eval_period``) and at the end,
    a heatmap picture of each stage's wiring goes in as ``ddw/wiring/<stage>``.
    """

    def __init__(self, period: int = 20, eval_period: int = 0):
        self._period = period
        self._eval_period = eval_period

    def _model(self):
        model = self.trainer.model
        return model.module if hasattr(model, "module") else model

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if next_iter % self._period == 0 or next_iter == self.trainer.max_iter:
            scalars = {}
            for stage, adjacency in collect_wiring(self._model()).items():
                for key, value in wiring_statistics(adjacency).items():
                    scalars[f"ddw/{stage}/{key}"] = value
            if scalars:
                self.trainer.storage.put_scalars(**scalars, smoothing_hint=False)
        if self._eval_period > 0 and next_iter % self._eval_period == 0 and next_iter != self.trainer.max_iter:
            self._put_pictures()

    def after_train(self):
        if self.trainer.iter + 1 >= self.trainer.max_iter:
            self._put_pictures()

    def _put_pictures(self):
        if not comm.is_main_process():
            return
        wiring = collect_wiring(self._model())
        for stage, adjacency in wiring.items():
            array = figure_to_array(wiring_figure({stage: adjacency}, 0, title=f"iter {self.trainer.iter + 1}"))
            image = torch.from_numpy(array).permute(2, 0, 1).float() / 255.0
            self.trainer.storage.put_image(f"ddw/wiring/{stage}", image)


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
