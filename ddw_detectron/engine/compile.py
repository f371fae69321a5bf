"""``MODEL.COMPILE``: torch.compile for the detection and the pretraining trainer."""

import logging

from torch import nn

__all__ = ["COMPILE_TARGETS", "add_compile_config", "compile_from_config"]

COMPILE_TARGETS = ("backbone", "model")


def add_compile_config(cfg) -> None:
    """``MODEL.COMPILE.*``: torch.compile in both trainers (``engine.compile_from_config``)."""
    from detectron2.config import CfgNode as CN

    cfg.MODEL.COMPILE = CN()
    # Compile in place (nn.Module.compile: checkpoint keys unchanged) for training and evaluation.
    # Off by default: on a CPU the first iterations wait minutes for the compiler.
    cfg.MODEL.COMPILE.ENABLED = False
    # "backbone": the backbone (DDW backbones compile whole, fullgraph=True: a graph break is an
    # error); "model": the whole model (Detectron2's heads and post-processing break the graph
    # wherever they leave tensors, and the compiler runs those parts eagerly).
    cfg.MODEL.COMPILE.TARGET = "backbone"
    # torch.compile's backend and mode ("" for its default mode), e.g. "max-autotune".
    cfg.MODEL.COMPILE.BACKEND = "inductor"
    cfg.MODEL.COMPILE.MODE = ""


def compile_from_config(cfg, model: nn.Module) -> nn.Module:
    """Compile ``model.backbone`` (``MODEL.COMPILE.TARGET "backbone"``, with ``fullgraph``) or
    the whole ``model`` in place with :meth:`nn.Module.compile`, so that parameter names and
    checkpoints stay as they are; nothing when ``MODEL.COMPILE.ENABLED`` is False. Returns
    ``model``."""
    spec = cfg.MODEL.COMPILE
    if not spec.ENABLED:
        return model
    if spec.TARGET not in COMPILE_TARGETS:
        raise ValueError(
            f"MODEL.COMPILE.TARGET = {spec.TARGET!r} is invalid: allowed values are "
            f"{list(COMPILE_TARGETS)}"
        )
    target = model.backbone if spec.TARGET == "backbone" else model
    target.compile(
        backend=spec.BACKEND, mode=spec.MODE or None, fullgraph=spec.TARGET == "backbone"
    )
    logging.getLogger(__name__).info(
        f"torch.compile ({spec.BACKEND}, mode {spec.MODE or 'default'}) of the {spec.TARGET}"
    )
    return model
