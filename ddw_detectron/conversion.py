"""Convert a checkpoint file into a Detectron2 checkpoint for the DDW model of a config
(``scripts/convert_pretrained.py``): the detection backbone, or for a classification config
(``configs/ImageNet/*.yaml``) the backbone and, when the class counts agree, the classifier."""

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import torch
from detectron2.config import CfgNode
from torch import Tensor

from .checkpoint import (
    convert_ddw,
    convert_detectron2_pkl,
    convert_torchvision,
    describe_state_dict,
    match_backbone,
)
from .modeling.family import family_of

__all__ = [
    "SOURCES",
    "Conversion",
    "convert_checkpoint",
    "is_classification_config",
    "target_state",
]

SOURCES = ("torchvision", "detectron2", "ddw")


@dataclass
class Conversion:
    """What :func:`convert_checkpoint` made: the ``weights`` to save, a description of the
    ``source`` and ``target``, the source keys ``dropped``, the target keys ``missing`` (left at
    their initialisation) and ``notes`` for the user."""

    weights: Dict[str, Tensor]
    source: str
    target: str
    dropped: List[str]
    missing: List[str]
    notes: List[str] = field(default_factory=list)


def is_classification_config(config_file: str) -> bool:
    """Whether the config (with its ``_BASE_`` files) sets pretraining ``CLS`` keys."""
    return "CLS" in CfgNode.load_yaml_with_base(config_file, allow_unsafe=True)


def target_state(cfg, classification: bool) -> Tuple[Dict[str, Tensor], str]:
    """The state dict the converted weights must fit, with backbone keys unprefixed: the
    config's bottom-up DDW backbone, plus ``head.*`` for a classification config."""
    family = family_of(cfg)
    if classification:
        from .classification import build_classifier

        state = {
            k.replace("backbone.", "", 1): v for k, v in build_classifier(cfg).state_dict().items()
        }
        return (
            state,
            f"DDW {family.name} classifier ({cfg.CLS.NUM_CLASSES} classes) from "
            f"{cfg.MODEL.BACKBONE.NAME}",
        )
    backbone = family.build_bottom_up(cfg)
    return backbone.state_dict(), f"DDW {family.name} from {cfg.MODEL.BACKBONE.NAME}"


def _read(path: str) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot read {path} as a PyTorch checkpoint: {exc}") from exc


def _read_source(source: str, path: str, cfg, classification: bool):
    if source == "torchvision":
        state = _read(path)
        state = (
            state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
        )
        converted, dropped = convert_torchvision(
            state, family_of(cfg).name, classifier=classification
        )
        return converted, dropped, f"torchvision {describe_state_dict(state)}"
    if source == "detectron2":
        converted, dropped = convert_detectron2_pkl(path)
        return (
            converted,
            dropped,
            f"a Detectron2 model-zoo checkpoint ({describe_state_dict(converted)})",
        )
    if source == "ddw":
        converted, dropped = convert_ddw(_read(path))
        return converted, dropped, "a DDW checkpoint"
    raise ValueError(f"unknown source {source!r}: expected one of {list(SOURCES)}")


def convert_checkpoint(source: str, path: str, cfg, classification: bool = False) -> Conversion:
    """Read ``path`` (a ``source`` checkpoint) and fit it to the config's model. A classifier
    of another class count than ``CLS.NUM_CLASSES`` is dropped with a note. Raises ValueError
    naming both architectures when the backbone does not fit."""
    converted, dropped, description = _read_source(source, path, cfg, classification)
    target, target_name = target_state(cfg, classification)
    notes = []
    head = {k: v for k, v in converted.items() if k.startswith("head.")}
    if head and head["head.weight"].shape != target["head.weight"].shape:
        notes.append(
            f"classifier not written: the source has {head['head.weight'].shape[0]} classes, "
            f"CLS.NUM_CLASSES is {cfg.CLS.NUM_CLASSES}"
        )
        dropped += list(head)
        converted = {k: v for k, v in converted.items() if k not in head}
    missing = match_backbone(converted, target, description, target_name)
    return Conversion(converted, description, target_name, dropped, missing, notes)
