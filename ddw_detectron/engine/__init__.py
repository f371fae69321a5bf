"""Detectron2 engine glue: trainer, hooks, multi-process launch, the train_net runner."""

from ..checkpoint import CheckpointWriteError, DDWCheckpointer
from ..data.check import DatasetNotFoundError, check_datasets
from . import hooks as _hooks
from . import runner
from .compile import compile_from_config
from .hooks import ThresholdWarmupHook, UnreadableImagesHook, WiringHook, attach_sparsity_loss
from .launch import launch, launch_from_args, setup_run
from .predictor import DDWPredictor
from .resume import ResumableTrainingSampler, restore_rng_states, rng_states
from .trainer import DDWTrainer, check_replicas_agree, create_ddp_model

__all__ = [
    "CheckpointWriteError",
    "DDWCheckpointer",
    "DDWPredictor",
    "DDWTrainer",
    "DatasetNotFoundError",
    "ResumableTrainingSampler",
    "ThresholdWarmupHook",
    "UnreadableImagesHook",
    "WiringHook",
    "attach_sparsity_loss",
    "check_datasets",
    "check_replicas_agree",
    "compile_from_config",
    "create_ddp_model",
    "launch",
    "launch_from_args",
    "restore_rng_states",
    "rng_states",
    "runner",
    "setup_run",
]


def __getattr__(name: str):
    if name == "SkippedImagesHook":  # the old name of UnreadableImagesHook, with a warning
        return _hooks.__getattr__(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
