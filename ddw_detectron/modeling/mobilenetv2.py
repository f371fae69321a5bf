"""DDW MobileNetV2 (Sandler et al., 2018) as a Detectron2 backbone.

Stages are the runs of inverted-residual blocks with one output width (width multiplier 1.0):

====== ======= ====== ======== ======
stage  blocks  width  expand   stride
====== ======= ====== ======== ======
stem   conv    32              2
mb1    1       16     1        2
mb2    2       24     6        4
mb3    3       32     6        8
mb4    4       64     6        16
mb5    3       96     6        16
mb6    3       160    6        32
mb7    1       320    6        32
last   conv    1280            32
====== ======= ====== ======== ======

``last`` is the final 1x1 convolution; like unused ResNet stages it is built only when it is in
``MODEL.MOBILENETV2.OUT_FEATURES`` (and stages after the last requested feature are not built).
"""

import copy
import re
from typing import Callable, List, Optional, Sequence

from detectron2.config import CfgNode as CN
from detectron2.config import instantiate
from detectron2.layers import CNNBlockBase, Conv2d, ShapeSpec, get_norm
from detectron2.modeling.backbone import BACKBONE_REGISTRY, FPN, Backbone
from torch import Tensor, nn

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
    "InvertedResidual",
    "DDWMobileNetV2",
    "build_ddw_mobilenetv2_backbone",
    "build_ddw_mobilenetv2_fpn_backbone",
    "build_retinanet_ddw_mobilenetv2_fpn_backbone",
]

# (expand ratio t, width c, blocks n, stride s of the first block)
SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STAGE_NAMES = tuple(f"mb{i}" for i in range(1, len(SETTINGS) + 1))
FPN_FEATURES = ("mb2", "mb3", "mb5", "mb7")
StageFactory = Callable[[str, List[nn.Module], int], nn.Module]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without going more than 10% below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class InvertedResidual(CNNBlockBase):
    """1x1 expansion (skipped when ``expand_ratio == 1``), 3x3 depthwise, linear 1x1 projection;
    identity shortcut when stride is 1 and widths agree.

    Shapes: ``[N, in_channels, H, W]`` to ``[N, out_channels, H / stride, W / stride]``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, stride: int, expand_ratio: int, norm="BN"
    ):
        super().__init__(in_channels, out_channels, stride)
        hidden = int(round(in_channels * expand_ratio))
        self.use_shortcut = stride == 1 and in_channels == out_channels
        self.expand = None
        if expand_ratio != 1:
            self.expand = Conv2d(
                in_channels,
                hidden,
                1,
                bias=False,
                norm=get_norm(norm, hidden),
                activation=nn.ReLU6(inplace=True),
            )
        self.depthwise = Conv2d(
            hidden,
            hidden,
            3,
            stride=stride,
            padding=1,
            groups=hidden,
            bias=False,
            norm=get_norm(norm, hidden),
            activation=nn.ReLU6(inplace=True),
        )
        self.project = Conv2d(
            hidden, out_channels, 1, bias=False, norm=get_norm(norm, out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.expand(x) if self.expand is not None else x
        out = self.project(self.depthwise(out))
        return out + x if self.use_shortcut else out


class MobileNetV2Stem(CNNBlockBase):
    """3x3 convolution, stride 2, with norm and ReLU6. ``[N, 3, H, W]`` to ``[N, C, H/2, W/2]``."""

    def __init__(self, in_channels: int, out_channels: int, norm="BN"):
        super().__init__(in_channels, out_channels, 2)
        self.conv = Conv2d(
            in_channels,
            out_channels,
            3,
            stride=2,
            padding=1,
            bias=False,
            norm=get_norm(norm, out_channels),
            activation=nn.ReLU6(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class DDWMobileNetV2(DDWBackbone, Backbone):
    """MobileNetV2 with the stages in ``dynamic_stages`` made :class:`DAGStage` s.

    Args:
        width_mult: width multiplier (channels rounded to multiples of 8, as in the paper).
        norm: Detectron2 norm name ("BN", "SyncBN", "FrozenBN", "GN", ...).
        out_features: among ``stem``, ``mb1``..``mb7``, ``last``.
        freeze_at: 1 freezes the stem, ``k`` the stem and ``mb1``..``mb{k-1}``.
        dynamic_stages, stage_factory, log_period: as for :class:`DDWResNet`.

    Forward: ``[N, 3, H, W]`` to ``{name: [N, C_name, H / stride_name, W / stride_name]}``.
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        norm="BN",
        out_features: Sequence[str] = FPN_FEATURES,
        freeze_at: int = 0,
        dynamic_stages: Sequence[str] = (),
        stage_factory: Optional[StageFactory] = None,
        log_period: int = LOG_PERIOD,
    ):
        super().__init__()
        num_stages = self._check_arguments(width_mult, out_features)
        self._out_features = list(out_features)
        channels = make_divisible(32 * width_mult)
        self.stem = MobileNetV2Stem(3, channels, norm)
        stride = self.stem.stride
        self._out_feature_channels = {"stem": channels}
        self._out_feature_strides = {"stem": stride}
        self.stage_names, self.stages = [], []
        for (t, c, n, s), name in zip(SETTINGS[:num_stages], STAGE_NAMES):
            width = make_divisible(c * width_mult)
            blocks = [
                InvertedResidual(
                    channels if i == 0 else width,
                    width,
                    stride=s if i == 0 else 1,
                    expand_ratio=t,
                    norm=norm,
                )
                for i in range(n)
            ]
            channels, stride = width, stride * s
            stage = nn.Sequential(*blocks)
            self.add_module(name, stage)
            self.stage_names.append(name)
            self.stages.append(stage)
            self._out_feature_channels[name] = width
            self._out_feature_strides[name] = stride
        self.last = (
            self._last_conv(channels, width_mult, norm, stride) if "last" in out_features else None
        )
        self.stage_names = tuple(self.stage_names)
        self._init_weights()
        # Checked against every stage name: a dynamic stage beyond the built ones is not an error.
        self.make_stages_dynamic(
            dynamic_stages, stage_factory, stage_names=STAGE_NAMES, log_period=log_period
        )
        self.freeze(freeze_at)

    @staticmethod
    def _check_arguments(width_mult: float, out_features: Sequence[str]) -> int:
        """Raise ValueError for invalid arguments; return the number of stages to build."""
        names = ("stem",) + STAGE_NAMES + ("last",)
        unknown = [f for f in out_features if f not in names]
        if unknown or not out_features:
            raise ValueError(
                f"MODEL.MOBILENETV2.OUT_FEATURES = {list(out_features)} is invalid: allowed names "
                f"are {list(names)}"
            )
        if width_mult <= 0:
            raise ValueError(f"MODEL.MOBILENETV2.WIDTH_MULT = {width_mult} is invalid: must be > 0")
        return max(names.index(f) for f in out_features)

    def _last_conv(self, channels: int, width_mult: float, norm, stride: int) -> nn.Module:
        """The final 1x1 convolution to 1280 channels (feature ``last``)."""
        width = make_divisible(1280 * max(1.0, width_mult))
        self._out_feature_channels["last"] = width
        self._out_feature_strides["last"] = stride
        return Conv2d(
            channels,
            width,
            1,
            bias=False,
            norm=get_norm(norm, width),
            activation=nn.ReLU6(inplace=True),
        )

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor):
        if x.dim() != 4:
            raise ValueError(f"DDWMobileNetV2 takes [N, C, H, W] input, got shape {list(x.shape)}")
        outputs = {}
        x = self.stem(x)
        if "stem" in self._out_features:
            outputs["stem"] = x
        for name, stage in zip(self.stage_names, self.stages):
            x = stage(x)
            if name in self._out_features:
                outputs[name] = x
        if self.last is not None:
            outputs["last"] = self.last(x)
        return outputs

    def __prepare_scriptable__(self):
        # TorchScript cannot iterate the plain list of stages; as Detectron2 does for its ResNet,
        # the scripted copy holds them in a ModuleList (its state-dict keys become stages.<i>.*).
        scriptable = copy.deepcopy(self)
        scriptable.stages = nn.ModuleList(scriptable.stages)
        for name in self.stage_names:
            delattr(scriptable, name)
        return scriptable

    def output_shape(self):
        return {
            name: ShapeSpec(
                channels=self._out_feature_channels[name], stride=self._out_feature_strides[name]
            )
            for name in self._out_features
        }

    def named_stages(self):
        return list(zip(self.stage_names, self.stages))


@BACKBONE_REGISTRY.register()
def build_ddw_mobilenetv2_backbone(cfg, input_shape: ShapeSpec) -> DDWMobileNetV2:
    """DDW MobileNetV2 from ``MODEL.MOBILENETV2.*``, ``MODEL.BACKBONE.FREEZE_AT`` and
    ``MODEL.DDW.*``."""
    warn_if_untrained(cfg)
    if input_shape.channels != 3:
        raise ValueError(
            f"MobileNetV2 takes 3-channel images, got input_shape.channels = {input_shape.channels}"
        )
    return instantiate(lazy_backbone(cfg))


def lazy_backbone(cfg):
    """The bottom-up backbone of ``cfg`` as a LazyConfig ``LazyCall`` of :class:`DDWMobileNetV2`
    (what :func:`build_ddw_mobilenetv2_backbone` builds)."""
    from detectron2.config import LazyCall as L

    m = cfg.MODEL.MOBILENETV2
    return L(DDWMobileNetV2)(
        width_mult=m.WIDTH_MULT,
        norm=m.NORM,
        out_features=list(m.OUT_FEATURES),
        **lazy_dynamic_kwargs(cfg, STAGE_NAMES),
    )


@BACKBONE_REGISTRY.register()
def build_ddw_mobilenetv2_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """DDW MobileNetV2 + Detectron2's FPN, P2-P6 (``LastLevelMaxPool``): for R-CNN."""
    return build_rcnn_fpn(cfg, build_ddw_mobilenetv2_backbone(cfg, input_shape))


@BACKBONE_REGISTRY.register()
def build_retinanet_ddw_mobilenetv2_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """DDW MobileNetV2 + Detectron2's FPN, P3-P7: for RetinaNet."""
    return build_retinanet_fpn(cfg, build_ddw_mobilenetv2_backbone(cfg, input_shape))


def torchvision_key(key: str) -> Optional[str]:
    """A torchvision MobileNetV2 ``state_dict`` key to ours (None for the classifier)."""
    if key.startswith("classifier."):
        return None
    m = re.match(r"features\.(\d+)\.(.*)", key)
    if m is None:
        return key
    index, rest = int(m.group(1)), m.group(2)
    if index == 0:
        return "stem.conv." + rest.replace("0.", "", 1).replace("1.", "norm.", 1)
    if index == sum(n for _, _, n, _ in SETTINGS) + 1:
        return "last." + rest.replace("0.", "", 1).replace("1.", "norm.", 1)
    block = index - 1
    for stage, (expand, _, count, _) in enumerate(SETTINGS):
        if block < count:
            break
        block -= count
    table = _TORCHVISION_BLOCK_KEYS[expand != 1]
    for source, target in table.items():
        if rest.startswith(source):
            return f"mb{stage + 1}.{block}." + target + rest[len(source) :]
    return key


# torchvision's InvertedResidual sub-module names to ours, without and with the expansion conv.
_TORCHVISION_BLOCK_KEYS = {
    False: {
        "conv.0.0.": "depthwise.",
        "conv.0.1.": "depthwise.norm.",
        "conv.1.": "project.",
        "conv.2.": "project.norm.",
    },
    True: {
        "conv.0.0.": "expand.",
        "conv.0.1.": "expand.norm.",
        "conv.1.0.": "depthwise.",
        "conv.1.1.": "depthwise.norm.",
        "conv.2.": "project.",
        "conv.3.": "project.norm.",
    },
}


def add_config(cfg) -> None:
    """``MODEL.MOBILENETV2.*``."""
    cfg.MODEL.MOBILENETV2 = CN()
    cfg.MODEL.MOBILENETV2.WIDTH_MULT = 1.0
    cfg.MODEL.MOBILENETV2.NORM = "BN"
    # Stages mb1..mb7 (strides 2, 4, 8, 16, 16, 32, 32) and "last" (the 1x1 conv to 1280
    # channels at stride 32, built only when asked for).
    cfg.MODEL.MOBILENETV2.OUT_FEATURES = list(FPN_FEATURES)


FAMILY = register_family(
    BackboneFamily(
        name="mobilenetv2",
        config_node="MOBILENETV2",
        stage_names=STAGE_NAMES,
        fpn_features=FPN_FEATURES,
        last_feature="last",
        torchvision_key=torchvision_key,
        torchvision_classifier="classifier.1.",
        add_config=add_config,
        lazy=lazy_backbone,
    )
)
