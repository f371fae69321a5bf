"""DDW ResNet and ResNeXt: Detectron2's ResNet whose chosen stages are DAGs of its blocks.

Stage names, feature names (``stem``, ``res2``..``res5``), channels and strides are Detectron2's.
``MODEL.RESNETS.*`` is read by Detectron2's own ``build_resnet_backbone``, so every key means
exactly what it means there (DEPTH 18/34/50/101/152, NUM_GROUPS and WIDTH_PER_GROUP for ResNeXt,
NORM, STRIDE_IN_1X1, RES5_DILATION, OUT_FEATURES, ...).
"""

import re
from functools import partial
from typing import Callable, List, Optional, Sequence

from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import BACKBONE_REGISTRY, ResNet
from detectron2.modeling.backbone.fpn import FPN
from detectron2.modeling.backbone.resnet import build_resnet_backbone
from torch import nn

from .dynamic import (
    DDWBackbone,
    build_rcnn_fpn,
    build_retinanet_fpn,
    dynamic_stage_names,
    lazy_dynamic_kwargs,
    make_dag_stage,
    warn_if_untrained,
)
from .family import BackboneFamily, register_family
from .stage_config import LOG_PERIOD, ConfigValueError

__all__ = [
    "FAMILY",
    "DDWResNet",
    "build_ddw_resnet_backbone",
    "build_ddw_resnet_fpn_backbone",
    "build_retinanet_ddw_resnet_fpn_backbone",
]

StageFactory = Callable[[str, List[nn.Module], int], nn.Module]
STAGE_NAMES = ("res2", "res3", "res4", "res5")
# Blocks per stage by MODEL.RESNETS.DEPTH, as Detectron2's build_resnet_backbone has them.
BLOCKS_PER_STAGE = {
    18: [2, 2, 2, 2],
    34: [3, 4, 6, 3],
    50: [3, 4, 6, 3],
    101: [3, 4, 23, 3],
    152: [3, 8, 36, 3],
}


def check_resnet_config(r) -> None:
    """Raise :class:`ConfigValueError` naming the key for ``MODEL.RESNETS`` values that
    Detectron2's ``build_resnet_backbone`` meets with a bare ``KeyError`` or ``assert``."""
    if r.DEPTH not in BLOCKS_PER_STAGE:
        raise ConfigValueError(
            f"MODEL.RESNETS.DEPTH = {r.DEPTH!r} is invalid: allowed values are "
            f"{sorted(BLOCKS_PER_STAGE)}"
        )
    if r.DEPTH >= 50:
        return
    for key, value, allowed in (
        ("RES2_OUT_CHANNELS", r.RES2_OUT_CHANNELS, 64),
        ("RES5_DILATION", r.RES5_DILATION, 1),
        ("NUM_GROUPS", r.NUM_GROUPS, 1),
    ):
        if value != allowed:
            raise ConfigValueError(
                f"MODEL.RESNETS.{key} = {value!r} is invalid for DEPTH {r.DEPTH}: Detectron2's "
                f"R18/R34 need {allowed}"
            )
    if any(r.DEFORM_ON_PER_STAGE):
        raise ConfigValueError(
            f"MODEL.RESNETS.DEFORM_ON_PER_STAGE = {list(r.DEFORM_ON_PER_STAGE)} is invalid for "
            f"DEPTH {r.DEPTH}: Detectron2's R18/R34 have no deformable blocks"
        )


class DDWResNet(DDWBackbone, ResNet):
    """Detectron2's ``ResNet`` with the stages in ``dynamic_stages`` made :class:`DAGStage` s.

    Args:
        stem, stages, out_features: as for Detectron2's ``ResNet``.
        freeze_at: as for ``ResNet``; routers of frozen stages are frozen too.
        dynamic_stages: names (``"res2"``..``"res5"``) of the stages to make dynamic.
        stage_factory: ``(name, blocks, out_channels) -> DAGStage``.
        log_period: training iterations between the wiring statistics put into the active
            ``EventStorage`` (``MODEL.DDW.LOG_PERIOD``).

    Forward: ``[N, 3, H, W]`` to ``{name: [N, C_name, H / stride_name, W / stride_name]}``.
    """

    def __init__(
        self,
        stem: nn.Module,
        stages: List[List[nn.Module]],
        out_features: Optional[Sequence[str]] = None,
        freeze_at: int = 0,
        dynamic_stages: Sequence[str] = (),
        stage_factory: Optional[StageFactory] = None,
        log_period: int = LOG_PERIOD,
    ):
        super().__init__(stem, stages, out_features=out_features, freeze_at=0)
        self.make_stages_dynamic(dynamic_stages, stage_factory, log_period=log_period)
        self.freeze(freeze_at)

    def named_stages(self):
        return list(zip(self.stage_names, self.stages))


@BACKBONE_REGISTRY.register()
def build_ddw_resnet_backbone(cfg, input_shape: ShapeSpec) -> DDWResNet:
    """DDW ResNet/ResNeXt from ``MODEL.RESNETS.*``, ``MODEL.BACKBONE.FREEZE_AT`` and
    ``MODEL.DDW.*``."""
    warn_if_untrained(cfg)
    check_resnet_config(cfg.MODEL.RESNETS)
    static_cfg = cfg.clone()
    static_cfg.defrost()
    static_cfg.MODEL.BACKBONE.FREEZE_AT = 0
    base = build_resnet_backbone(static_cfg, input_shape)
    return DDWResNet(
        base.stem,
        [list(stage.children()) for stage in base.stages],
        out_features=cfg.MODEL.RESNETS.OUT_FEATURES,
        freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
        dynamic_stages=dynamic_stage_names(cfg, base.stage_names),
        stage_factory=partial(make_dag_stage, cfg),
        log_period=cfg.MODEL.DDW.LOG_PERIOD,
    )


@BACKBONE_REGISTRY.register()
def build_ddw_resnet_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """DDW ResNet/ResNeXt + Detectron2's FPN, P2-P6 (``LastLevelMaxPool``): for R-CNN."""
    return build_rcnn_fpn(cfg, build_ddw_resnet_backbone(cfg, input_shape))


@BACKBONE_REGISTRY.register()
def build_retinanet_ddw_resnet_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """DDW ResNet/ResNeXt + Detectron2's FPN, P3-P7: for RetinaNet."""
    return build_retinanet_fpn(cfg, build_ddw_resnet_backbone(cfg, input_shape))


def torchvision_key(key: str) -> Optional[str]:
    """A torchvision ResNet/ResNeXt ``state_dict`` key to ours (None for the classifier)."""
    if key.startswith("fc."):
        return None
    key = re.sub(r"^conv1\.", "stem.conv1.", key)
    key = re.sub(r"^bn1\.", "stem.conv1.norm.", key)
    key = re.sub(r"^layer(\d)\.", lambda m: f"res{int(m.group(1)) + 1}.", key)
    key = re.sub(r"\.bn(\d)\.", r".conv\1.norm.", key)
    key = key.replace(".downsample.0.", ".shortcut.").replace(".downsample.1.", ".shortcut.norm.")
    return key


def lazy_backbone(cfg):
    """The bottom-up backbone of ``cfg`` as a LazyConfig ``LazyCall`` of :class:`DDWResNet`: the
    stem and stages that Detectron2's ``build_resnet_backbone`` makes of ``MODEL.RESNETS.*``
    (deformable blocks aside), written out stage by stage."""
    from detectron2.config import LazyCall as L
    from detectron2.modeling.backbone import BasicStem
    from detectron2.modeling.backbone.resnet import BasicBlock, BottleneckBlock

    r = cfg.MODEL.RESNETS
    check_resnet_config(r)
    in_channels, out_channels = r.STEM_OUT_CHANNELS, r.RES2_OUT_CHANNELS
    bottleneck = r.NUM_GROUPS * r.WIDTH_PER_GROUP
    stages = []
    for index, count in enumerate(BLOCKS_PER_STAGE[r.DEPTH]):
        dilation = r.RES5_DILATION if index == 3 else 1
        first = 1 if index == 0 or dilation == 2 else 2
        kwargs = dict(num_blocks=count, stride_per_block=[first] + [1] * (count - 1))
        kwargs.update(in_channels=in_channels, out_channels=out_channels, norm=r.NORM)
        if r.DEPTH < 50:
            kwargs["block_class"] = BasicBlock
        else:
            kwargs.update(block_class=BottleneckBlock, bottleneck_channels=bottleneck)
            kwargs.update(stride_in_1x1=r.STRIDE_IN_1X1, dilation=dilation, num_groups=r.NUM_GROUPS)
        stages.append(L(ResNet.make_stage)(**kwargs))
        in_channels, out_channels, bottleneck = out_channels, out_channels * 2, bottleneck * 2
    stem = L(BasicStem)(in_channels=len(cfg.MODEL.PIXEL_MEAN), out_channels=r.STEM_OUT_CHANNELS)
    stem.norm = r.NORM
    return L(DDWResNet)(
        stem=stem,
        stages=stages,
        out_features=list(r.OUT_FEATURES),
        **lazy_dynamic_kwargs(cfg, STAGE_NAMES),
    )


FAMILY = register_family(
    BackboneFamily(
        name="resnet",
        config_node="RESNETS",
        stage_names=STAGE_NAMES,
        fpn_features=STAGE_NAMES,
        last_feature="res5",
        torchvision_key=torchvision_key,
        torchvision_classifier="fc.",
        lazy=lazy_backbone,
    )
)
