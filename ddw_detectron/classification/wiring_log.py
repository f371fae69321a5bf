"""Pretraining's wiring log: what shows a collapse coming, and the stop once one has come."""

import json
import os

from torch import nn

from ..layers import collect_wiring, router_grad_norms
from ..utils.collapse import CollapseMonitor
from ..utils.wiring_stats import disconnected, telemetry

__all__ = ["WiringLog", "disconnected_images"]


def disconnected_images(model: nn.Module) -> int:
    """How many images of the last forward had some stage's output cut off from the image (no
    path of kept edges through it; 0 for a model without DAG stages)."""
    cut = None
    for adjacency in collect_wiring(model).values():
        stage = disconnected(adjacency.detach().cpu())
        cut = stage if cut is None else cut | stage
    return 0 if cut is None else int(cut.sum())


class WiringLog:
    """Every ``MODEL.DDW.LOG_PERIOD`` training steps: the wiring telemetry of the step's batch
    (``ddw/<stage>/*``, :func:`~ddw_detectron.utils.wiring_stats.telemetry`, with each stage's
    nodes left without input, images cut off and smallest largest-incoming weight), each stage's
    router gradient norm (``ddw/<stage>/router_grad_norm``) and the loss, into TensorBoard and a
    JSON line of ``OUTPUT_DIR/wiring.jsonl``; then the :class:`CollapseMonitor`, which stops a
    collapsed run. Every process checks (each stops alike); rank 0 writes."""

    def __init__(self, cfg, output_dir: str, writer=None):
        self.period = cfg.MODEL.DDW.LOG_PERIOD
        self.enabled = bool(cfg.MODEL.DDW.DYNAMIC_STAGES)
        self.monitor = CollapseMonitor.from_config(cfg)
        self.path = os.path.join(output_dir, "wiring.jsonl")
        self.writer = writer

    def after_step(self, step: int, model: nn.Module, loss: float):
        """After the optimizer step of training step ``step`` (0-based), gradients still in place
        (under AMP unscaled already: ``GradScaler.step`` unscales them before stepping)."""
        if not self.enabled or (step + 1) % self.period:
            return
        scalars = telemetry(collect_wiring(model))
        for stage, norm in router_grad_norms(model).items():
            scalars[f"ddw/{stage}/router_grad_norm"] = norm
        if self.writer is not None:
            for key, value in scalars.items():
                self.writer.add_scalar(key, value, step + 1)
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": step + 1, "loss": loss, **scalars}) + "\n")
        if self.monitor is not None:
            self.monitor.check(scalars, f"step {step + 1}")
