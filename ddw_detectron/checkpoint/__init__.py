"""Checkpoints, in one place: reading files safely (:mod:`.io`), the facts a checkpoint's
consumer must match (:mod:`.facts`), static ImageNet keys renamed to DDW keys (:mod:`.keys`),
converting a file for a config (:mod:`.convert`, ``scripts/convert_pretrained.py``) and the
checkpointer of both trainers (:mod:`.checkpointer`)."""

from .checkpointer import CheckpointWriteError, DDWCheckpointer, IncompleteBackboneError
from .convert import SOURCES, Conversion, convert_checkpoint, is_classification_config
from .facts import (
    FACTS_KEY,
    FactsMismatchError,
    check_facts,
    consumer_facts,
    mismatches,
    model_facts,
)
from .io import CheckpointReadError, UnsafeFileError, load_checkpoint_file, load_torch_file
from .keys import (
    convert_ddw,
    convert_detectron2_pkl,
    convert_torchvision,
    match_backbone,
    save_detectron2_checkpoint,
)

__all__ = [
    "FACTS_KEY",
    "SOURCES",
    "CheckpointReadError",
    "CheckpointWriteError",
    "Conversion",
    "DDWCheckpointer",
    "FactsMismatchError",
    "IncompleteBackboneError",
    "UnsafeFileError",
    "check_facts",
    "consumer_facts",
    "convert_checkpoint",
    "convert_ddw",
    "convert_detectron2_pkl",
    "convert_torchvision",
    "is_classification_config",
    "load_checkpoint_file",
    "load_torch_file",
    "match_backbone",
    "mismatches",
    "model_facts",
    "save_detectron2_checkpoint",
]
