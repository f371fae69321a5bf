"""The DDW core in pure PyTorch (no Detectron2 import): usable with any model's blocks."""

from . import router as _router
from .aggregate import aggregate, weighted_sum
from .dag_stage import DAGStage
from .gate import GATES
from .router import ROUTER_MODES, Router, SharedRouter, resolve_router_mode
from .scriptable import ScriptableDAGStage, make_scriptable
from .wiring import (
    collect_wiring,
    dag_stages,
    freeze_wiring,
    is_router_parameter,
    named_stages,
    router_grad_norms,
    set_threshold_warmup,
    sparsity_loss,
    use_wiring,
)

__all__ = [
    "aggregate",
    "weighted_sum",
    "DAGStage",
    "ScriptableDAGStage",
    "make_scriptable",
    "collect_wiring",
    "freeze_wiring",
    "is_router_parameter",
    "dag_stages",
    "named_stages",
    "router_grad_norms",
    "set_threshold_warmup",
    "sparsity_loss",
    "use_wiring",
    "GATES",
    "ROUTER_MODES",
    "Router",
    "SharedRouter",
    "resolve_router_mode",
]


def __getattr__(name: str):
    if name == "StaticRouter":  # the old name of SharedRouter, with a warning
        return _router.__getattr__(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
