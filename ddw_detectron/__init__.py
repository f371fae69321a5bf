"""Differentiable Dynamic Wirings (DDW) backbones for Detectron2.

Importing this package registers the DDW backbones in Detectron2's ``BACKBONE_REGISTRY`` and the
demo datasets ``ddw_shapes_train`` / ``ddw_shapes_val`` in its ``DatasetCatalog``.
"""

from . import data, modeling  # noqa: F401  (register the demo datasets and the backbones)
from .config import add_ddw_config
from .layers import DAGStage, Router, aggregate, collect_wiring

__version__ = "0.1.0"
__all__ = [
    "add_ddw_config",
    "collect_wiring",
    "DAGStage",
    "Router",
    "aggregate",
    "data",
    "modeling",
]
