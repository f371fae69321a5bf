"""Detectron2 engine glue: trainer, hooks, multi-process launch."""

from .checkpoint import DDWCheckpointer
from .hooks import WiringHook, attach_sparsity_loss
from .launch import launch
from .trainer import DDWTrainer, check_datasets, check_replicas_agree, create_ddp_model

__all__ = ["DDWCheckpointer", "DDWTrainer", "WiringHook", "attach_sparsity_loss", "check_datasets", "check_replicas_agree", "create_ddp_model", "launch"]
