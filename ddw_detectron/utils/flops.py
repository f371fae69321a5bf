"""FLOP counting for DDW models: fvcore's count plus the aggregation multiply-adds.

fvcore counts one FLOP per multiply-add of convolutions and linear layers and skips
element-wise ops, so the weighted sums of a DAG stage would go uncounted. They are added here
for every edge of the complete DAG (an upper bound: on the CPU dropped edges are not computed).
"""

from typing import Dict

import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

from ..layers import DAGStage

__all__ = ["count_flops", "aggregation_flops"]


def aggregation_flops(model: nn.Module, inputs) -> int:
    """Multiply-adds of all DAG aggregations of one forward of ``model`` on ``inputs``."""
    total = 0
    handles = []

    def hook(stage: DAGStage, args, output):
        nonlocal total
        edges = stage.num_nodes * (stage.num_nodes - 1) // 2
        total += edges * output.numel()

    for module in model.modules():
        if isinstance(module, DAGStage):
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(*inputs) if isinstance(inputs, tuple) else model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return total


def count_flops(model: nn.Module, inputs) -> Dict[str, int]:
    """``{"fvcore": ..., "aggregation": ..., "total": ...}`` for one forward (batch included)."""
    was_training = model.training
    model.eval()
    try:
        analysis = FlopCountAnalysis(model, inputs)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings(
            "none"
        )
        counted = int(analysis.total())
        aggregation = aggregation_flops(model, inputs)
    finally:
        model.train(was_training)
    return {"fvcore": counted, "aggregation": aggregation, "total": counted + aggregation}
