"""Pretraining's optimizer: parameter groups (no weight decay on norms, biases and routers; the
routers' learning-rate factor) and ``CLS.OPTIMIZER``."""

import math

import torch
from torch import nn

from ..layers import is_router_parameter

__all__ = ["OPTIMIZERS", "build_optimizer", "parameter_groups"]


def parameter_groups(
    model: nn.Module, weight_decay: float, decay_all: bool, router_lr_factor: float = 1.0
):
    """Three groups: with weight decay; without it for norm weights and biases; routers,
    without weight decay (unless ``decay_all``) and with ``lr_factor`` ``router_lr_factor``
    (the trainer multiplies the base learning rate by it)."""
    norm_types = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
    groups = {"decay": [], "no_decay": [], "routers": []}
    for module_name, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            full = f"{module_name}.{name}" if module_name else name
            if is_router_parameter(full):
                groups["routers"].append(p)
            elif not decay_all and (isinstance(module, norm_types) or name == "bias"):
                groups["no_decay"].append(p)
            else:
                groups["decay"].append(p)
    return [
        {"params": groups["decay"], "weight_decay": weight_decay, "lr_factor": 1.0},
        {"params": groups["no_decay"], "weight_decay": 0.0, "lr_factor": 1.0},
        {
            "params": groups["routers"],
            "weight_decay": weight_decay if decay_all else 0.0,
            "lr_factor": router_lr_factor,
        },
    ]


OPTIMIZERS = ("SGD", "AdamW")


def build_optimizer(cfg, groups, lr: float) -> torch.optim.Optimizer:
    """``CLS.OPTIMIZER`` over the parameter ``groups``; raises ValueError naming the key."""
    if cfg.CLS.OPTIMIZER == "SGD":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.CLS.MOMENTUM, nesterov=cfg.CLS.NESTEROV)
    if cfg.CLS.OPTIMIZER == "AdamW":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(
        f"CLS.OPTIMIZER = {cfg.CLS.OPTIMIZER!r} is invalid: allowed values are {list(OPTIMIZERS)}"
    )


def warmup_cosine(warmup: int, total: int, warmup_factor: float):
    """The learning-rate factor at step ``it``: linear from ``warmup_factor`` to 1 over
    ``warmup`` steps, then a cosine to 0 at ``total``."""

    def factor(it: int) -> float:
        if it < warmup:
            return warmup_factor + (1 - warmup_factor) * it / warmup
        progress = (it - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor
