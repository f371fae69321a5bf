"""Model-level wiring utilities over the :class:`DAGStage` s of a model: read the last
forward's wirings, the sparsity loss, fix a stage's wiring, impose per-sample wirings, name
router parameters."""

import warnings
from contextlib import contextmanager
from typing import Dict, Iterator, Mapping, Optional

import torch
from torch import Tensor, nn

from .dag_stage import DAGStage

__all__ = [
    "collect_wiring",
    "freeze_wiring",
    "is_router_parameter",
    "dag_stages",
    "named_stages",
    "router_grad_norms",
    "set_threshold_warmup",
    "sparsity_loss",
    "use_wiring",
]


def is_router_parameter(name: str) -> bool:
    """Whether a parameter name of a model holding DAG stages belongs to a router (for
    optimizer groups and freezing by name)."""
    return ".routers." in f".{name}"


def collect_wiring(model: nn.Module) -> Dict[str, Tensor]:
    """``{stage name: Tensor[B, n, n]}`` from the last forward of every :class:`DAGStage`.

    The name is the one the backbone gave the stage (e.g. ``"res3"``) or else its module path.
    Stages that have not run a forward yet are left out.
    """
    return {
        name: stage.adjacency
        for name, stage in dag_stages(model).items()
        if stage.adjacency is not None
    }


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
    ``<= threshold`` are dropped). Each router's :meth:`set_constant` makes it output its row
    for every input, so the stage, its checkpoint format and its exported graph stay as they
    are, and the wiring no longer depends on the input."""
    n = stage.num_nodes
    if tuple(adjacency.shape) != (n, n):
        raise ValueError(
            f"freeze_wiring: adjacency must be [{n}, {n}] for this stage, got "
            f"{tuple(adjacency.shape)}"
        )
    for i, router in enumerate(stage.routers):
        router.set_constant(adjacency[i, i + 1 :], stage.threshold)


def set_threshold_warmup(model: nn.Module, iteration: int, warmup_iters: int) -> None:
    """Make every :class:`DAGStage` of ``model`` train with its threshold times
    ``min(1, iteration / warmup_iters)``: the threshold rises linearly from 0 over the first
    ``warmup_iters`` iterations (``MODEL.DDW.THRESHOLD_WARMUP_ITERS``; 0: no warm-up). Inference
    always uses the full threshold."""
    if warmup_iters < 0:
        raise ValueError(f"set_threshold_warmup: warmup_iters must be >= 0, got {warmup_iters}")
    factor = 1.0 if iteration >= warmup_iters else max(iteration, 0) / warmup_iters
    for stage in dag_stages(model).values():
        stage.threshold_warming_up = factor < 1.0
        stage.training_threshold.fill_(stage.threshold * factor)


def router_grad_norms(model: nn.Module) -> Dict[str, float]:
    """``{stage name: L2 norm of its routers' gradients}`` as they stand (after a backward);
    stages whose routers have no gradient are left out. Reads the norms on the host."""
    norms = {}
    for name, stage in dag_stages(model).items():
        grads = [p.grad for p in stage.routers.parameters() if p.grad is not None]
        if grads:
            norms[name] = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
    return norms


def dag_stages(model: nn.Module) -> Dict[str, DAGStage]:
    """``{stage name: DAGStage}`` of ``model``, named as :func:`collect_wiring` names them."""
    return {
        module.wiring_name or path: module
        for path, module in model.named_modules()
        if isinstance(module, DAGStage)
    }


def named_stages(model: nn.Module) -> Dict[str, DAGStage]:
    """The old name of :func:`dag_stages` (a backbone's ``named_stages()`` is another thing:
    its base network's stages in order); warns, and goes in version 0.3."""
    warnings.warn(
        "ddw_detectron.layers.named_stages is renamed dag_stages; the old name goes in 0.3",
        FutureWarning,
        stacklevel=2,
    )
    return dag_stages(model)


@contextmanager
def use_wiring(model: nn.Module, wiring: Mapping[str, Tensor]) -> Iterator[None]:
    """Within the block, each DAG stage named in ``wiring`` (``{stage name: Tensor[B, n, n]}``,
    as :func:`collect_wiring` returns) uses that per-sample matrix instead of its routers'
    output: the weights as used, not thresholded again. E.g. each image evaluated with another
    image's wiring."""
    stages = dag_stages(model)
    unknown = [name for name in wiring if name not in stages]
    if unknown:
        raise ValueError(f"use_wiring: no DAG stage named {unknown}; the stages are {list(stages)}")
    try:
        for name, adjacency in wiring.items():
            stages[name].forced_adjacency = adjacency
        yield
    finally:
        for name in wiring:
            stages[name].forced_adjacency = None
