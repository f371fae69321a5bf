"""DDW against its static twin and its frozen wiring, over seeds (``scripts/compare.py``)."""

from .report import summarize, verdict, write_outputs
from .runs import TASKS, VARIANTS, Comparison, ComparisonConflict, RunSpec

__all__ = [
    "TASKS",
    "VARIANTS",
    "Comparison",
    "ComparisonConflict",
    "RunSpec",
    "summarize",
    "verdict",
    "write_outputs",
]
