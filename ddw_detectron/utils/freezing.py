"""One static wiring for a trained DDW model: each dynamic stage fixed to the wiring it uses on
a dataset (``scripts/freeze_wiring.py``, and the frozen-wiring baseline of comparisons)."""

from collections import Counter
from typing import Dict, Iterable, Optional

import torch
from detectron2.data import DatasetCatalog

from ..layers import DAGStage, collect_wiring, freeze_wiring
from .wiring_runs import collect_over_records

__all__ = ["FREEZE_MODES", "fixed_wiring", "freeze_over_batches", "freeze_over_dataset"]

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


def _dynamic_stages(model) -> Dict[str, DAGStage]:
    stages = {m.wiring_name: m for m in model.modules() if isinstance(m, DAGStage)}
    if not stages:
        raise ValueError("the model has no DDW stages; its wiring is static already")
    return stages


@torch.no_grad()
def freeze_over_dataset(
    cfg, model, dataset: str, mode: str = "mean", max_images: Optional[int] = None
) -> Dict[str, torch.Tensor]:
    """Run ``model`` (eval mode) over the registered ``dataset`` (at most ``max_images``), then
    freeze every dynamic stage to :func:`fixed_wiring` of what it used; returns
    ``{stage: [n, n]}``. Raises ValueError if the model has no DDW stage."""
    stages = _dynamic_stages(model)
    records = DatasetCatalog.get(dataset)
    model.eval()
    run = collect_over_records(cfg, model, records, max_images or len(records))
    fixed = {name: fixed_wiring(run.wirings[name], mode) for name in stages}
    for name, stage in stages.items():
        freeze_wiring(stage, fixed[name])
    return fixed


@torch.no_grad()
def freeze_over_batches(model, batches: Iterable[torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The classification counterpart of :func:`freeze_over_dataset`: run ``model`` (eval mode)
    on each ``[B, 3, H, W]`` batch of ``batches`` (on the model's device), then freeze every
    dynamic stage to the mean wiring over all images; returns ``{stage: [n, n]}``."""
    stages = _dynamic_stages(model)
    device = next(model.parameters()).device
    model.eval()
    sums: Dict[str, torch.Tensor] = {}
    count = 0
    for images in batches:
        model(images.to(device))
        for name, adjacency in collect_wiring(model).items():
            sums[name] = sums.get(name, 0) + adjacency.double().sum(0)
        count += len(images)
    if count == 0:
        raise ValueError("no images to collect the wiring on")
    fixed = {name: (sums[name] / count).float() for name in stages}
    for name, stage in stages.items():
        freeze_wiring(stage, fixed[name])
    return fixed
