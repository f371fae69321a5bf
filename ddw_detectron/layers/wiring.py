"""Model-level wiring utilities over the :class:`DAGStage` s of a model: read the last
forward's wirings, the sparsity loss, fix a stage's wiring, name router parameters."""

from typing import Dict, Optional

import torch
from torch import Tensor, nn

from .dag_stage import DAGStage

__all__ = ["collect_wiring", "freeze_wiring", "is_router_parameter", "sparsity_loss"]


def is_router_parameter(name: str) -> bool:
    """Whether a parameter name of a model holding DAG stages belongs to a router (for
    optimizer groups and freezing by name)."""
    return ".routers." in f".{name}"


def collect_wiring(model: nn.Module) -> Dict[str, Tensor]:
    """``{stage name: Tensor[B, n, n]}`` from the last forward of every :class:`DAGStage`.

    The name is the one the backbone gave the stage (e.g. ``"res3"``) or else its module path.
    Stages that have not run a forward yet are left out.
    """
    wiring = {}
    for path, module in model.named_modules():
        if isinstance(module, DAGStage) and module.adjacency is not None:
            wiring[module.wiring_name or path] = module.adjacency
    return wiring


def sparsity_loss(model: nn.Module) -> Optional[Tensor]:
    """Sum over the :class:`DAGStage` s of ``model`` of their last training forward's L1 of edge
    weights (mean over the batch); None when no stage has one."""
    terms = [
        module.edge_weight_l1
        for module in model.modules()
        if isinstance(module, DAGStage) and module.edge_weight_l1 is not None
    ]
    return torch.stack(terms).sum() if terms else None


def freeze_wiring(stage: DAGStage, adjacency: Tensor) -> None:
    """Give ``stage`` one fixed wiring for every image: ``adjacency`` ``[n, n]`` (entries
    ``<= threshold`` are dropped). Each router's FC weights become 0 and its biases the logits of
    the fixed weights, so the stage, its checkpoint format and its exported graph stay as they
    are, and the wiring no longer depends on the input."""
    n = stage.num_nodes
    if tuple(adjacency.shape) != (n, n):
        raise ValueError(
            f"freeze_wiring: adjacency must be [{n}, {n}] for this stage, got "
            f"{tuple(adjacency.shape)}"
        )
    weights = adjacency.detach().float().cpu().clamp(0.0, 1.0 - 1e-6)
    with torch.no_grad():
        for i, router in enumerate(stage.routers):
            row = weights[i, i + 1 :]
            logits = torch.where(
                row > stage.threshold, torch.logit(row.clamp_min(1e-6)), torch.full_like(row, -30.0)
            )
            if router.hidden is not None:
                router.hidden.weight.zero_()
                router.hidden.bias.zero_()
            router.fc.weight.zero_()
            router.fc.bias.copy_(logits.to(router.fc.bias))
