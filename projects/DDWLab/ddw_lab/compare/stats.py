"""Paired comparisons over seeds: mean difference, Student-t 95% confidence interval, verdict."""

import math
import statistics
from typing import Dict, Sequence

__all__ = ["CONFIDENCE", "POWER", "paired_difference", "spread", "t_quantile"]

CONFIDENCE = 0.95
POWER = 0.8  # for the smallest difference the setup resolves


def t_quantile(p: float, dof: int) -> float:
    """The ``p`` quantile of Student's t distribution with ``dof`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(p, dof))


def spread(values: Sequence[float]) -> Dict:
    """Mean, standard deviation (n - 1) and the values."""
    values = [float(v) for v in values]
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "per_seed": values,
    }


def paired_difference(
    a: Sequence[float], b: Sequence[float], higher_is_better: bool = True
) -> Dict:
    """``a - b`` paired by seed: :func:`spread` of the differences, the 95% confidence interval
    of their mean (Student t, ``n - 1`` degrees of freedom), ``verdict`` ("ahead" / "behind"
    for ``a`` when the interval excludes 0, by the metric's direction, else "no difference
    resolved at this power") and
    ``resolvable``: the smallest true difference this many seeds with this spread detect at 95%
    confidence and 80% power, ``(t_0.975 + t_0.8) * std / sqrt(n)``."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"paired_difference needs two equal runs of >= 2 values, got {a}, {b}")
    differences = [x - y for x, y in zip(a, b)]
    entry = spread(differences)
    n, std = len(differences), entry["std"]
    half = t_quantile(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n)
    low, high = entry["mean"] - half, entry["mean"] + half
    if low > 0 or high < 0:
        verdict = "ahead" if (low > 0) == higher_is_better else "behind"
    else:
        verdict = "no difference resolved at this power"
    resolvable = (
        (t_quantile(0.5 + CONFIDENCE / 2, n - 1) + t_quantile(POWER, n - 1)) * std / math.sqrt(n)
    )
    return {**entry, "ci95": [low, high], "verdict": verdict, "resolvable": resolvable}
