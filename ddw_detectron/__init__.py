"""Differentiable Dynamic Wirings (DDW) backbones for Detectron2.

Importing this package registers the DDW backbones in Detectron2's ``BACKBONE_REGISTRY`` and
fvcore's handle for the aggregation's multiply-adds (so Detectron2's FLOP tools count DDW). It
registers no dataset.
"""

from . import modeling  # noqa: F401  (registers the backbones)
from .config import add_ddw_config
from .layers import DAGStage, Router, aggregate, collect_wiring
from .utils.flops import register_fvcore_handles

register_fvcore_handles()

__version__ = "0.1.0"
__all__ = [
    "add_ddw_config",
    "collect_wiring",
    "DAGStage",
    "Router",
    "aggregate",
    "modeling",
]
