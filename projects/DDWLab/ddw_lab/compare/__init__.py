"""Does the per-image wiring work? The static chain, the learned static DAG and DDW, retrained
each, plus DDW frozen and DDW with shuffled wirings, over seeds (``scripts/compare.py``)."""

from ddw_lab.compare.arms import ARMS, CONTRASTS, TASKS, Arm
from ddw_lab.compare.report import summarize, write_outputs
from ddw_lab.compare.runs import Comparison, Job
from ddw_lab.compare.stats import paired_difference

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
