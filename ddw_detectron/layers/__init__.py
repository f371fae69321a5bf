"""The DDW core in pure PyTorch (no Detectron2 import): usable with any model's blocks."""

from .aggregate import aggregate, weighted_sum
from .dag_stage import (
    GATES,
    DAGStage,
    ScriptableDAGStage,
    collect_wiring,
    freeze_wiring,
    is_router_parameter,
    make_scriptable,
    sparsity_loss,
)
from .router import Router

__all__ = [
    "aggregate",
    "weighted_sum",
    "DAGStage",
    "ScriptableDAGStage",
    "make_scriptable",
    "collect_wiring",
    "freeze_wiring",
    "is_router_parameter",
    "sparsity_loss",
    "GATES",
    "Router",
]
