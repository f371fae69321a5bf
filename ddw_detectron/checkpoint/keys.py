"""Checkpoint keys: static ImageNet checkpoints renamed to DDW backbones' keys.

The converted file holds the backbone's keys without a model prefix (``stem.conv1.weight``,
``res2.0.conv1.weight``, ...) and asks Detectron2's ``DetectionCheckpointer`` for its
name-matching heuristics, so it loads into any model that contains the backbone (plain,
FPN, RetinaNet, the classification model). Routers are not in it: they keep their fresh
initialisation.
"""

import re
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from ..modeling.family import FAMILIES
from ..utils.atomic import atomic_save
from .facts import FACTS_KEY
from .io import load_pickle_file

__all__ = [
    "convert_torchvision",
    "convert_detectron2_pkl",
    "convert_ddw",
    "match_backbone",
    "save_detectron2_checkpoint",
]


def describe_state_dict(state: Dict[str, Tensor]) -> str:
    """A short name of the architecture a torchvision-style state dict belongs to."""
    keys = set(state)
    if "layer1.0.conv1.weight" in keys:
        blocks = [
            len({k.split(".")[1] for k in keys if k.startswith(f"layer{i}.")}) for i in range(1, 5)
        ]
        bottleneck = "layer1.0.conv3.weight" in keys
        groups = 1
        if bottleneck:
            conv2 = state["layer1.0.conv2.weight"]
            groups = conv2.shape[0] // conv2.shape[1]
        kind = "Bottleneck" if bottleneck else "BasicBlock"
        return f"ResNet ({kind}, blocks {blocks}, groups {groups})"
    if "features.0.0.weight" in keys and any(k.startswith("features.17.") for k in keys):
        return f"MobileNetV2 (stem width {state['features.0.0.weight'].shape[0]})"
    if "stem.0.weight" in keys and any(k.startswith("trunk_output.") for k in keys):
        blocks = len({k.split(".")[2] for k in keys if k.startswith("trunk_output.")})
        se = any(".se." in k for k in keys)
        width = state["stem.0.weight"].shape[0]
        return f"RegNet{'Y' if se else 'X'} ({blocks} blocks, stem width {width})"
    if any(k.startswith("res2.") for k in keys):
        return "Detectron2 ResNet"
    return "an unknown architecture"


def convert_torchvision(
    state: Dict[str, Tensor], family: str, classifier: bool = False
) -> Tuple[Dict[str, Tensor], List[str]]:
    """Rename a torchvision ``state_dict`` to the DDW backbone of ``family``; with
    ``classifier``, its final linear layer becomes ``head.weight`` / ``head.bias`` (the
    classification model's head).

    Returns the converted dict and the source keys it dropped (the classifier, unless kept).
    """
    description = FAMILIES[family]
    rename, head = description.torchvision_key, description.torchvision_classifier
    converted, dropped = {}, []
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        target = "head." + key[len(head) :] if classifier and key.startswith(head) else rename(key)
        if target is None:
            dropped.append(key)
        else:
            converted[target] = value
    return converted, dropped


def convert_detectron2_pkl(path: str) -> Tuple[Dict[str, Tensor], List[str], bool]:
    """Read a Detectron2 model-zoo ``.pkl`` (Detectron2 format, or Caffe2/MSRA names as in
    ``ImageNetPretrained/MSRA/R-50.pkl``) and return its ResNet backbone weights, the keys left
    out, and whether it is an MSRA (Caffe2) file, whose input convention is known (BGR, the
    stride in the 1x1 convolution)."""
    from detectron2.checkpoint.c2_model_loading import convert_c2_detectron_names

    data = load_pickle_file(path)
    if not isinstance(data, dict):
        raise ValueError(
            f"{path} is not a Detectron2 .pkl checkpoint (it holds a {type(data).__name__})"
        )
    msra = not ("model" in data and "__author__" in data)
    if not msra:
        weights = data["model"]
    else:
        weights = data.get("blobs", data)
        weights = {k: v for k, v in weights.items() if not k.endswith("_momentum")}
        weights, _ = convert_c2_detectron_names(weights)
    converted, dropped = {}, []
    for key, value in weights.items():
        key = re.sub(r"^(backbone\.)?(bottom_up\.)?", "", key)
        if key.startswith(("stem.", "res")) and re.match(r"^(stem|res\d)\.", key):
            converted[key] = (
                torch.as_tensor(np.asarray(value)) if not isinstance(value, Tensor) else value
            )
        else:
            dropped.append(key)
    return converted, dropped, msra


def convert_ddw(checkpoint: dict) -> Tuple[Dict[str, Tensor], List[str]]:
    """The backbone of a DDW checkpoint: a classification checkpoint of
    ``scripts/pretrain_imagenet.py`` (``backbone.*`` + ``head.*``) or a detector's
    (``backbone.bottom_up.*``). Routers are kept."""
    state = checkpoint.get("model", checkpoint)
    converted, dropped = {}, []
    for key, value in state.items():
        m = re.match(r"^(?:module\.)?backbone\.(?:bottom_up\.)?(.*)$", key)
        if m is None or key.endswith("num_batches_tracked"):
            dropped.append(key)
        else:
            converted[m.group(1)] = value
    return converted, dropped


def match_backbone(
    converted: Dict[str, Tensor], backbone_state: Dict[str, Tensor], source: str, target: str
) -> List[str]:
    """Check ``converted`` against the target backbone's state dict.

    Raises ValueError naming both architectures when a converted key is not in the target or
    has another shape. Returns the target keys the checkpoint does not provide (routers, or
    whatever a partial checkpoint lacks).
    """
    unexpected = [k for k in converted if k not in backbone_state]
    mismatched = [
        f"{k}: {tuple(converted[k].shape)} vs {tuple(backbone_state[k].shape)}"
        for k in converted
        if k in backbone_state and tuple(converted[k].shape) != tuple(backbone_state[k].shape)
    ]
    if unexpected or mismatched or not converted:
        details = "; ".join((mismatched + [f"{k} not in the target" for k in unexpected])[:5])
        raise ValueError(
            f"the checkpoint is {source}, which does not match the config's backbone ({target}): "
            f"{details or 'no backbone weights found'}"
        )
    return [
        k for k in backbone_state if k not in converted and not k.endswith("num_batches_tracked")
    ]


def save_detectron2_checkpoint(
    weights: Dict[str, Tensor], path: str, author: str, facts: Optional[Mapping] = None
) -> None:
    """Write (atomically) a checkpoint that ``DetectionCheckpointer`` loads with name matching,
    with the ``facts`` its consumer must match (:mod:`.facts`)."""
    checkpoint = {
        "model": {k: v.detach().cpu() for k, v in weights.items()},
        "__author__": author,
        "matching_heuristics": True,
    }
    if facts is not None:
        checkpoint[FACTS_KEY] = dict(facts)
    atomic_save(checkpoint, path)
