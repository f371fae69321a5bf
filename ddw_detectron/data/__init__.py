"""Datasets of ddw_detectron; the demo dataset is registered on import."""

from .shapes import CLASSES as SHAPES_CLASSES
from .shapes import ensure_shapes_split, register_shapes

register_shapes()

__all__ = ["SHAPES_CLASSES", "ensure_shapes_split", "register_shapes"]
