"""``MODEL.COMPILE``: torch.compile for the detection and the pretraining trainer."""

import logging

from torch import nn

__all__ = ["COMPILE_TARGETS", "compile_from_config"]

COMPILE_TARGETS = ("backbone", "model")


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
