"""One static wiring for a trained DDW model: each dynamic stage fixed to the wiring it uses on
a dataset (``scripts/freeze_wiring.py``, and the frozen-wiring baseline of comparisons)."""

from collections import Counter
from typing import Dict, Optional

import torch
from detectron2.data import DatasetCatalog

from ..layers import DAGStage, freeze_wiring
from .wiring_report import collect_over_records

__all__ = ["FREEZE_MODES", "fixed_wiring", "freeze_over_dataset"]

FREEZE_MODES = ("mean", "mode")


def fixed_wiring(adjacency: torch.Tensor, mode: str) -> torch.Tensor:
    """One ``[n, n]`` wiring from per-image wirings ``[N, n, n]``: their mean (``"mean"``), or
    the most frequent pattern of kept edges with the mean weights of the images that had it
    (``"mode"``)."""
    if mode not in FREEZE_MODES:
        raise ValueError(f"mode = {mode!r} is invalid: allowed values are {list(FREEZE_MODES)}")
    if mode == "mean":
        return adjacency.mean(0)
    patterns = Counter(tuple(a.flatten().tolist()) for a in (adjacency > 0))
    pattern = torch.tensor(patterns.most_common(1)[0][0]).reshape(adjacency.shape[1:])
    matching = (adjacency > 0).eq(pattern).flatten(1).all(1)
    return adjacency[matching].mean(0) * pattern


@torch.no_grad()
def freeze_over_dataset(
    cfg, model, dataset: str, mode: str = "mean", max_images: Optional[int] = None
) -> Dict[str, torch.Tensor]:
    """Run ``model`` (eval mode) over the registered ``dataset`` (at most ``max_images``), then
    freeze every dynamic stage to :func:`fixed_wiring` of what it used; returns
    ``{stage: [n, n]}``. Raises ValueError if the model has no DDW stage."""
    stages = {m.wiring_name: m for m in model.modules() if isinstance(m, DAGStage)}
    if not stages:
        raise ValueError("the model has no DDW stages; its wiring is static already")
    records = DatasetCatalog.get(dataset)
    model.eval()
    run = collect_over_records(cfg, model, records, max_images or len(records))
    fixed = {name: fixed_wiring(run.wirings[name], mode) for name in stages}
    for name, stage in stages.items():
        freeze_wiring(stage, fixed[name])
    return fixed
