"""What a DDW backbone family is, written once per family and read by everything else: the
builders, checkpoint conversion, the classification model, the benchmark and the tests.

Each family module (``resnet.py``, ``mobilenetv2.py``, ``regnet.py``) describes itself with
:func:`register_family`; adding a family is one such module plus its tests.
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY

__all__ = ["BackboneFamily", "FAMILIES", "family_of", "register_family"]


@dataclass(frozen=True)
class BackboneFamily:
    """One DDW backbone family.

    Attributes:
        name: ``"resnet"``; its registered builders are ``build_ddw_<name>_backbone`` (bottom-up),
            ``build_ddw_<name>_fpn_backbone`` (R-CNN FPN, P2-P6) and
            ``build_retinanet_ddw_<name>_fpn_backbone`` (RetinaNet FPN, P3-P7).
        config_node: the ``MODEL.<config_node>`` node of its keys (``OUT_FEATURES``, ...).
        stage_names: the stages that can be dynamic, in order.
        fpn_features: the bottom-up features an R-CNN FPN reads by default (strides 4-32).
        last_feature: the feature a classifier pools (pretraining).
        torchvision_key: a torchvision ``state_dict`` key to this backbone's key, None to drop.
        torchvision_classifier: the prefix of torchvision's final linear layer (``"fc."``).
        add_config: adds the family's ``MODEL.<config_node>`` keys with their defaults (called
            by ``add_ddw_config``); None when Detectron2 has them (``RESNETS``).
        lazy: ``cfg -> LazyCall`` of the bottom-up backbone the config describes (the
            LazyConfig form, ``ddw_detectron.model_zoo.lazy_config``).
    """

    name: str
    config_node: str
    stage_names: Tuple[str, ...]
    fpn_features: Tuple[str, ...]
    last_feature: str
    torchvision_key: Callable[[str], Optional[str]]
    torchvision_classifier: str
    add_config: Optional[Callable[[Any], None]] = None
    lazy: Optional[Callable[[Any], Any]] = None

    @property
    def builders(self) -> Dict[str, str]:
        """``{"bottom_up" | "fpn" | "retinanet": registered builder name}``."""
        return {
            "bottom_up": f"build_ddw_{self.name}_backbone",
            "fpn": f"build_ddw_{self.name}_fpn_backbone",
            "retinanet": f"build_retinanet_ddw_{self.name}_fpn_backbone",
        }

    def set_out_features(self, cfg, features: Sequence[str]) -> None:
        """Set ``MODEL.<config_node>.OUT_FEATURES`` (cfg must be mutable)."""
        cfg.MODEL[self.config_node].OUT_FEATURES = list(features)

    def build_bottom_up(self, cfg, out_features: Optional[Sequence[str]] = None):
        """The bottom-up DDW backbone of ``cfg`` (without FPN), with ``out_features`` if given."""
        if out_features is not None:
            cfg = cfg.clone()
            cfg.defrost()
            self.set_out_features(cfg, out_features)
        builder = BACKBONE_REGISTRY.get(self.builders["bottom_up"])
        return builder(cfg, ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN)))


FAMILIES: Dict[str, BackboneFamily] = {}


def register_family(family: BackboneFamily) -> BackboneFamily:
    """Add ``family`` to :data:`FAMILIES` (its builders register themselves in
    ``BACKBONE_REGISTRY``)."""
    if family.name in FAMILIES:
        raise ValueError(f"a backbone family named {family.name!r} is registered already")
    FAMILIES[family.name] = family
    return family


def family_of(cfg) -> BackboneFamily:
    """The family whose name ``MODEL.BACKBONE.NAME`` contains (``build_ddw_resnet_fpn_backbone``:
    resnet); raises ValueError naming the known families."""
    name = cfg.MODEL.BACKBONE.NAME.lower()
    for family in sorted(FAMILIES.values(), key=lambda f: -len(f.name)):
        if family.name in name:
            return family
    raise ValueError(
        f"MODEL.BACKBONE.NAME = {cfg.MODEL.BACKBONE.NAME!r} is not a DDW backbone "
        f"(expected a name containing one of {list(FAMILIES)})"
    )
