"""DDW RegNetX / RegNetY: Detectron2's RegNet whose chosen stages are DAGs of its blocks.

Nodes are Detectron2's ``ResBottleneckBlock`` (with squeeze-excitation for RegNetY). Stages
``s1``..``s4`` have strides 4, 8, 16, 32; block names inside a stage stay ``b1``, ``b2``, ...
so static and dynamic checkpoints share keys.
"""

import re
from collections import OrderedDict
from typing import Callable, Mapping, Optional, Sequence

from detectron2.config import CfgNode as CN
from detectron2.config import instantiate
from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import BACKBONE_REGISTRY
from detectron2.modeling.backbone.fpn import FPN
from detectron2.modeling.backbone.regnet import RegNet, ResBottleneckBlock, SimpleStem
from torch import nn

from .dynamic import (
    DDWBackbone,
    build_rcnn_fpn,
    build_retinanet_fpn,
    lazy_dynamic_kwargs,
    warn_if_untrained,
)
from .family import BackboneFamily, register_family
from .stage_config import LOG_PERIOD

__all__ = [
    "DDWRegNet",
    "regnet_parameters",
    "build_ddw_regnet_backbone",
    "build_ddw_regnet_fpn_backbone",
    "build_retinanet_ddw_regnet_fpn_backbone",
]

StageFactory = Callable[[str, Mapping[str, nn.Module], int], nn.Module]
STAGE_NAMES = ("s1", "s2", "s3", "s4")


# RegNet generator parameters (Radosavovic et al., "Designing Network Design Spaces", 2020):
# depth, w0, wa, wm, group width, SE ratio.
REGNET_PRESETS = {
    "RegNetX-400MF": dict(DEPTH=22, W0=24, WA=24.48, WM=2.54, GROUP_WIDTH=16, SE_RATIO=0.0),
    "RegNetX-800MF": dict(DEPTH=16, W0=56, WA=35.73, WM=2.28, GROUP_WIDTH=16, SE_RATIO=0.0),
    "RegNetX-1.6GF": dict(DEPTH=18, W0=80, WA=34.01, WM=2.25, GROUP_WIDTH=24, SE_RATIO=0.0),
    "RegNetX-3.2GF": dict(DEPTH=25, W0=88, WA=26.31, WM=2.25, GROUP_WIDTH=48, SE_RATIO=0.0),
    "RegNetX-4GF": dict(DEPTH=23, W0=96, WA=38.65, WM=2.43, GROUP_WIDTH=40, SE_RATIO=0.0),
    "RegNetY-400MF": dict(DEPTH=16, W0=48, WA=27.89, WM=2.09, GROUP_WIDTH=8, SE_RATIO=0.25),
    "RegNetY-800MF": dict(DEPTH=14, W0=56, WA=38.84, WM=2.4, GROUP_WIDTH=16, SE_RATIO=0.25),
    "RegNetY-1.6GF": dict(DEPTH=27, W0=48, WA=20.71, WM=2.65, GROUP_WIDTH=24, SE_RATIO=0.25),
    "RegNetY-3.2GF": dict(DEPTH=21, W0=80, WA=42.63, WM=2.66, GROUP_WIDTH=24, SE_RATIO=0.25),
    "RegNetY-4GF": dict(DEPTH=22, W0=96, WA=31.41, WM=2.24, GROUP_WIDTH=64, SE_RATIO=0.25),
}


class DDWRegNet(DDWBackbone, RegNet):
    """Detectron2's ``RegNet`` with the stages in ``dynamic_stages`` made :class:`DAGStage` s.

    Args:
        dynamic_stages: names (``"s1"``..``"s4"``) of the stages to make dynamic.
        stage_factory: ``(name, {block name: block}, out_channels) -> DAGStage``.
        log_period: as for :class:`~ddw_detectron.modeling.DDWResNet`.
        freeze_at: as for ``RegNet``; routers of frozen stages are frozen too.
        **kwargs: Detectron2 ``RegNet`` arguments (depth, w_a, w_0, w_m, group_width, ...).
    """

    def __init__(
        self,
        *,
        dynamic_stages: Sequence[str] = (),
        stage_factory: Optional[StageFactory] = None,
        log_period: int = LOG_PERIOD,
        freeze_at: int = 0,
        **kwargs,
    ):
        super().__init__(freeze_at=0, **kwargs)
        self.make_stages_dynamic(dynamic_stages, stage_factory, log_period=log_period)
        self.freeze(freeze_at)

    def named_stages(self):
        return [(name, stage) for stage, name in self.stages_and_names]

    def _put_stage(self, index, name, stage):
        setattr(self, name, stage)
        self.stages_and_names[index] = (stage, name)

    @staticmethod
    def stage_nodes(stage):
        # Named nodes keep the block names (b1, b2, ...): static and dynamic keys agree.
        return OrderedDict(stage.named_children())


def regnet_parameters(cfg) -> dict:
    """The generator parameters from ``MODEL.REGNET.PRESET`` or the explicit keys."""
    regnet = cfg.MODEL.REGNET
    if regnet.PRESET:
        if regnet.PRESET not in REGNET_PRESETS:
            raise ValueError(
                f"MODEL.REGNET.PRESET = {regnet.PRESET!r} is invalid: allowed values are "
                f"{sorted(REGNET_PRESETS)} or '' to use MODEL.REGNET.DEPTH/W0/WA/WM/GROUP_WIDTH"
            )
        values = REGNET_PRESETS[regnet.PRESET]
    else:
        values = {k: regnet[k] for k in ("DEPTH", "W0", "WA", "WM", "GROUP_WIDTH", "SE_RATIO")}
    return dict(
        depth=values["DEPTH"],
        w_0=values["W0"],
        w_a=values["WA"],
        w_m=values["WM"],
        group_width=values["GROUP_WIDTH"],
        se_ratio=values["SE_RATIO"],
    )


@BACKBONE_REGISTRY.register()
def build_ddw_regnet_backbone(cfg, input_shape: ShapeSpec) -> DDWRegNet:
    """DDW RegNet from ``MODEL.REGNET.*``, ``MODEL.BACKBONE.FREEZE_AT`` and ``MODEL.DDW.*``."""
    warn_if_untrained(cfg)
    regnet = cfg.MODEL.REGNET
    if input_shape.channels != 3:
        raise ValueError(
            f"RegNet takes 3-channel images, got input_shape.channels = {input_shape.channels}"
        )
    unknown = [f for f in regnet.OUT_FEATURES if f not in ("stem",) + STAGE_NAMES]
    if unknown:
        raise ValueError(
            f"MODEL.REGNET.OUT_FEATURES = {list(regnet.OUT_FEATURES)} is invalid: allowed names "
            f"are {['stem', *STAGE_NAMES]}"
        )
    return instantiate(lazy_backbone(cfg))


def lazy_backbone(cfg):
    """The bottom-up backbone of ``cfg`` as a LazyConfig ``LazyCall`` of :class:`DDWRegNet`
    (what :func:`build_ddw_regnet_backbone` builds)."""
    from detectron2.config import LazyCall as L

    regnet = cfg.MODEL.REGNET
    return L(DDWRegNet)(
        stem_class=SimpleStem,
        stem_width=regnet.STEM_WIDTH,
        block_class=ResBottleneckBlock,
        bottleneck_ratio=regnet.BOTTLENECK_RATIO,
        norm=regnet.NORM,
        out_features=list(regnet.OUT_FEATURES),
        **lazy_dynamic_kwargs(cfg, STAGE_NAMES),
        **regnet_parameters(cfg),
    )


@BACKBONE_REGISTRY.register()
def build_ddw_regnet_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """DDW RegNet + Detectron2's FPN, P2-P6 (``LastLevelMaxPool``): for R-CNN."""
    return build_rcnn_fpn(cfg, build_ddw_regnet_backbone(cfg, input_shape))


@BACKBONE_REGISTRY.register()
def build_retinanet_ddw_regnet_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """DDW RegNet + Detectron2's FPN, P3-P7: for RetinaNet."""
    return build_retinanet_fpn(cfg, build_ddw_regnet_backbone(cfg, input_shape))


def torchvision_key(key: str) -> Optional[str]:
    """A torchvision RegNet ``state_dict`` key to ours (None for the classifier)."""
    if key.startswith("fc."):
        return None
    key = key.replace("stem.0.", "stem.conv.").replace("stem.1.", "stem.bn.")
    key = re.sub(
        r"^trunk_output\.block(\d+)\.block\d+-(\d+)\.",
        lambda m: f"s{m.group(1)}.b{int(m.group(2)) + 1}.",
        key,
    )
    key = key.replace(".proj.0.", ".proj.").replace(".proj.1.", ".bn.")
    key = re.sub(r"\.f\.([abc])\.0\.", r".f.\1.", key)
    key = re.sub(r"\.f\.([abc])\.1\.", r".f.\1_bn.", key)
    return key.replace(".se.fc1.", ".se.f_ex.0.").replace(".se.fc2.", ".se.f_ex.2.")


def add_config(cfg) -> None:
    """``MODEL.REGNET.*``."""
    cfg.MODEL.REGNET = CN()
    # A name of REGNET_PRESETS fills DEPTH/W0/WA/WM/GROUP_WIDTH/SE_RATIO; "" uses the keys below.
    cfg.MODEL.REGNET.PRESET = "RegNetX-1.6GF"
    cfg.MODEL.REGNET.DEPTH = 18
    cfg.MODEL.REGNET.W0 = 80
    cfg.MODEL.REGNET.WA = 34.01
    cfg.MODEL.REGNET.WM = 2.25
    cfg.MODEL.REGNET.GROUP_WIDTH = 24
    cfg.MODEL.REGNET.SE_RATIO = 0.0
    cfg.MODEL.REGNET.BOTTLENECK_RATIO = 1.0
    cfg.MODEL.REGNET.STEM_WIDTH = 32
    cfg.MODEL.REGNET.NORM = "BN"
    cfg.MODEL.REGNET.OUT_FEATURES = list(STAGE_NAMES)


FAMILY = register_family(
    BackboneFamily(
        name="regnet",
        config_node="REGNET",
        stage_names=STAGE_NAMES,
        fpn_features=STAGE_NAMES,
        last_feature="s4",
        torchvision_key=torchvision_key,
        torchvision_classifier="fc.",
        add_config=add_config,
        lazy=lazy_backbone,
    )
)
