"""FLOP counting for DDW models: fvcore's count plus the aggregation multiply-adds.

fvcore counts one FLOP per multiply-add of convolutions and linear layers and skips
element-wise ops, so the weighted sums of a DAG stage would go uncounted. Traced, a node's sum
is one multiply (for its first edge) and one ``aten::addcmul_`` per further edge, and each
router pools its node's output with ``aten::mean``: :func:`register_fvcore_handles` (run on
``import ddw_detectron``) gives fvcore handles for both, so that fvcore, Detectron2's
``FlopCountAnalysis`` and its ``tools/analyze_model.py`` count them (one per output element of a
multiply-add, one per input element of a mean) instead of warning about unsupported operators.
:func:`count_flops` adds every edge of the complete DAG (an upper bound: on the CPU dropped
edges are not computed).
"""

import importlib
from typing import Dict

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import elementwise_flop_counter
from torch import nn

from ..layers import DAGStage

__all__ = ["AGGREGATION_HANDLES", "aggregation_flops", "count_flops", "register_fvcore_handles"]

# One multiply-add per output element of each further edge's in-place multiply-add; one add per
# input element of a router's global average pool.
AGGREGATION_HANDLES = {
    "aten::addcmul_": elementwise_flop_counter(input_scale=0, output_scale=1),
    "aten::mean": elementwise_flop_counter(input_scale=1, output_scale=0),
}


def register_fvcore_handles() -> None:
    """Add :data:`AGGREGATION_HANDLES` to fvcore's default handles (those every
    ``FlopCountAnalysis`` starts from); a handle already there is kept."""
    table = getattr(importlib.import_module("fvcore.nn.flop_count"), "_DEFAULT_SUPPORTED_OPS", None)
    if table is not None:
        for name, handle in AGGREGATION_HANDLES.items():
            table.setdefault(name, handle)


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
        analysis.set_op_handle(**{name: None for name in AGGREGATION_HANDLES})  # counted below
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings(
            "none"
        )
        counted = int(analysis.total())
        aggregation = aggregation_flops(model, inputs)
    finally:
        model.train(was_training)
    return {"fvcore": counted, "aggregation": aggregation, "total": counted + aggregation}
