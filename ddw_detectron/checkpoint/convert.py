"""Convert a checkpoint file into a Detectron2 checkpoint for the DDW model of a config
(``scripts/convert_pretrained.py``): the detection backbone, or for a classification config
(``configs/ImageNet/*.yaml``) the backbone and, when the class counts agree, the classifier.

The source's input convention must be the config's: torchvision weights are RGB with
torchvision's statistics and the stride in the 3x3 convolution, MSRA model-zoo files BGR with
the stride in the 1x1, a DDW checkpoint states its own facts. A config that contradicts them is
refused; the converted file carries the config's facts (:mod:`.facts`)."""

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from torch import Tensor

from ..modeling.classifier import build_classifier
from ..modeling.family import family_of
from .facts import FACTS_KEY, MSRA_FACTS, TORCHVISION_FACTS, check_facts, model_facts
from .io import load_torch_file
from .keys import (
    convert_ddw,
    convert_detectron2_pkl,
    convert_torchvision,
    describe_state_dict,
    match_backbone,
)

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
    their initialisation), ``notes`` for the user and the ``facts`` to write with them."""

    weights: Dict[str, Tensor]
    source: str
    target: str
    dropped: List[str]
    missing: List[str]
    notes: List[str] = field(default_factory=list)
    facts: Dict = field(default_factory=dict)


def is_classification_config(config_file: str) -> bool:
    """Whether the config (with its ``_BASE_`` files) sets pretraining ``CLS`` keys."""
    from ..utils.yaml_files import read_yaml

    return "CLS" in read_yaml(config_file)


def target_state(cfg, classification: bool) -> Tuple[Dict[str, Tensor], str]:
    """The state dict the converted weights must fit, with backbone keys unprefixed: the
    config's bottom-up DDW backbone, plus ``head.*`` for a classification config."""
    family = family_of(cfg)
    if classification:
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


def _read_source(source: str, path: str, cfg, classification: bool):
    """``(converted weights, dropped keys, description, the source's facts)``."""
    if source == "torchvision":
        state = load_torch_file(path)
        state = (
            state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
        )
        converted, dropped = convert_torchvision(
            state, family_of(cfg).name, classifier=classification
        )
        return converted, dropped, f"torchvision {describe_state_dict(state)}", TORCHVISION_FACTS
    if source == "detectron2":
        converted, dropped, msra = convert_detectron2_pkl(path)
        description = f"a Detectron2 model-zoo checkpoint ({describe_state_dict(converted)})"
        return converted, dropped, description, MSRA_FACTS if msra else None
    if source == "ddw":
        checkpoint = load_torch_file(path)
        converted, dropped = convert_ddw(checkpoint)
        return converted, dropped, "a DDW checkpoint", checkpoint.get(FACTS_KEY)
    raise ValueError(f"unknown source {source!r}: expected one of {list(SOURCES)}")


def convert_checkpoint(source: str, path: str, cfg, classification: bool = False) -> Conversion:
    """Read ``path`` (a ``source`` checkpoint) and fit it to the config's model. A classifier
    of another class count than ``CLS.NUM_CLASSES`` is dropped with a note. Raises ValueError
    naming both architectures when the backbone does not fit, and
    :class:`~ddw_detectron.checkpoint.facts.FactsMismatchError` when the config contradicts the
    source's input convention."""
    converted, dropped, description, facts = _read_source(source, path, cfg, classification)
    ours = model_facts(cfg)
    check_facts(facts, ours, f"{path} ({description})")
    target, target_name = target_state(cfg, classification)
    notes = []
    if facts is None:
        notes.append(
            f"{path} states no input convention: check that INPUT.FORMAT, MODEL.PIXEL_MEAN/STD "
            "and MODEL.RESNETS.STRIDE_IN_1X1 of the config are those it was trained with"
        )
    head = {k: v for k, v in converted.items() if k.startswith("head.")}
    if head and head["head.weight"].shape != target["head.weight"].shape:
        notes.append(
            f"classifier not written: the source has {head['head.weight'].shape[0]} classes, "
            f"CLS.NUM_CLASSES is {cfg.CLS.NUM_CLASSES}"
        )
        dropped += list(head)
        converted = {k: v for k, v in converted.items() if k not in head}
    missing = match_backbone(converted, target, description, target_name)
    return Conversion(converted, description, target_name, dropped, missing, notes, ours)
