"""DDW backbones, registered in Detectron2's ``BACKBONE_REGISTRY`` on import."""

from .dynamic import DDWBackbone
from .family import FAMILIES, BackboneFamily, family_of, register_family
from .mobilenetv2 import (
    DDWMobileNetV2,
    InvertedResidual,
    build_ddw_mobilenetv2_backbone,
    build_ddw_mobilenetv2_fpn_backbone,
    build_retinanet_ddw_mobilenetv2_fpn_backbone,
)
from .regnet import (
    DDWRegNet,
    build_ddw_regnet_backbone,
    build_ddw_regnet_fpn_backbone,
    build_retinanet_ddw_regnet_fpn_backbone,
)
from .resnet import (
    DDWResNet,
    build_ddw_resnet_backbone,
    build_ddw_resnet_fpn_backbone,
    build_retinanet_ddw_resnet_fpn_backbone,
)

__all__ = [
    "DDWBackbone",
    "FAMILIES",
    "BackboneFamily",
    "family_of",
    "register_family",
    "DDWMobileNetV2",
    "DDWRegNet",
    "DDWResNet",
    "InvertedResidual",
    "build_ddw_mobilenetv2_backbone",
    "build_ddw_mobilenetv2_fpn_backbone",
    "build_retinanet_ddw_mobilenetv2_fpn_backbone",
    "build_ddw_regnet_backbone",
    "build_ddw_regnet_fpn_backbone",
    "build_retinanet_ddw_regnet_fpn_backbone",
    "build_ddw_resnet_backbone",
    "build_ddw_resnet_fpn_backbone",
    "build_retinanet_ddw_resnet_fpn_backbone",
]
