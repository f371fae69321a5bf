"""Does the per-image wiring work? The static chain, the learned static DAG and DDW, retrained
each, plus DDW frozen and DDW with shuffled wirings, over seeds (``scripts/compare.py``)."""

from .arms import ARMS, CONTRASTS, TASKS, Arm
from .report import summarize, write_outputs
from .runs import Comparison, Job
from .stats import paired_difference

__all__ = [
    "ARMS",
    "CONTRASTS",
    "TASKS",
    "Arm",
    "Comparison",
    "Job",
    "paired_difference",
    "summarize",
    "write_outputs",
]
