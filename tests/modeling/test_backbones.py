import pytest
import torch
import torchvision
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY

from ddw_detectron.layers import DAGStage
from ddw_detectron.utils.flops import count_flops
from tests.helpers import ALL_STAGES, build, make_cfg

RGB = ShapeSpec(channels=3)

# name, family, config overrides, torchvision constructor, classifier attribute
ARCHS = [
    ("R-18", "resnet", {}, torchvision.models.resnet18, "fc"),
    (
        "R-50",
        "resnet",
        {"MODEL.RESNETS.DEPTH": 50, "MODEL.RESNETS.RES2_OUT_CHANNELS": 256},
        torchvision.models.resnet50,
        "fc",
    ),
    (
        "X-50-32x4d",
        "resnet",
        {
            "MODEL.RESNETS.DEPTH": 50,
            "MODEL.RESNETS.RES2_OUT_CHANNELS": 256,
            "MODEL.RESNETS.NUM_GROUPS": 32,
            "MODEL.RESNETS.WIDTH_PER_GROUP": 4,
        },
        torchvision.models.resnext50_32x4d,
        "fc",
    ),
    (
        "MobileNetV2-1.0",
        "mobilenetv2",
        {"MODEL.MOBILENETV2.OUT_FEATURES": ["mb2", "mb3", "mb5", "last"]},
        torchvision.models.mobilenet_v2,
        "classifier",
    ),
    (
        "RegNetX-1.6GF",
        "regnet",
        {"MODEL.REGNET.PRESET": "RegNetX-1.6GF"},
        torchvision.models.regnet_x_1_6gf,
        "fc",
    ),
]


def num_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name, family, overrides, constructor, head", ARCHS)
def test_static_mode_is_the_base_architecture(name, family, overrides, constructor, head):
    static = build(family, make_cfg(family, dynamic=False, **overrides))
    reference = constructor()
    assert num_params(static) == num_params(reference) - num_params(getattr(reference, head))
    assert not any(isinstance(m, DAGStage) for m in static.modules())


@pytest.mark.parametrize("name, family, overrides, constructor, head", ARCHS)
def test_dynamic_cost_over_static(name, family, overrides, constructor, head):
    static = build(family, make_cfg(family, dynamic=False, **overrides))
    dynamic = build(family, make_cfg(family, dynamic=True, **overrides))
    params = num_params(dynamic) / num_params(static)
    x = torch.randn(1, 3, 224, 224)
    flops_static = count_flops(static, (x,))
    flops_dynamic = count_flops(dynamic, (x,))
    flops = flops_dynamic["total"] / flops_static["total"]
    print(
        f"\n{name}: params x{params:.4f}, FLOPs x{flops:.4f} (aggregation "
        f"{flops_dynamic['aggregation']:,} of {flops_dynamic['total']:,})"
    )
    assert flops_static["aggregation"] == 0 and flops_dynamic["aggregation"] > 0
    assert 1.0 < params <= 1.01
    assert 1.0 < flops <= 1.02


EXPECTED_FEATURES = {
    "resnet": {"res2": (64, 4), "res3": (128, 8), "res4": (256, 16), "res5": (512, 32)},
    "mobilenetv2": {"mb2": (24, 4), "mb3": (32, 8), "mb5": (96, 16), "mb7": (320, 32)},
    # Detectron2's RegNet generator gives RegNetX-400MF 384 channels in s4 (torchvision: 400).
    "regnet": {"s1": (32, 4), "s2": (64, 8), "s3": (160, 16), "s4": (384, 32)},
}


@pytest.mark.parametrize("family", ["resnet", "mobilenetv2", "regnet"])
def test_builders_give_documented_features(family):
    cfg = make_cfg(family)
    x = torch.randn(2, 3, 64, 96)
    bottom_up = build(family, cfg)
    assert {
        k: (v.channels, v.stride) for k, v in bottom_up.output_shape().items()
    } == EXPECTED_FEATURES[family]
    in_features = list(EXPECTED_FEATURES[family])
    cfg.MODEL.FPN.IN_FEATURES = in_features
    expectations = {
        f"build_ddw_{family}_fpn_backbone": {f"p{i}": 2**i for i in range(2, 7)},
        f"build_retinanet_ddw_{family}_fpn_backbone": {f"p{i}": 2**i for i in range(3, 8)},
    }
    cfg.MODEL.FPN.IN_FEATURES = in_features
    for builder, strides in expectations.items():
        if "retinanet" in builder:
            cfg.MODEL.FPN.IN_FEATURES = in_features[1:]
        backbone = BACKBONE_REGISTRY.get(builder)(cfg, RGB)
        assert backbone.size_divisibility == 32
        shapes = backbone.output_shape()
        assert {k: v.stride for k, v in shapes.items()} == strides
        outputs = backbone(x)
        for k, v in outputs.items():
            assert v.shape == (2, 256, -(-64 // strides[k]), -(-96 // strides[k])), k
    outputs = bottom_up(x)
    for k, (channels, stride) in EXPECTED_FEATURES[family].items():
        assert outputs[k].shape == (2, channels, 64 // stride, 96 // stride)


@pytest.mark.parametrize("depth, groups, width", [(34, 1, 64), (101, 32, 8), (152, 1, 64)])
def test_other_resnet_depths_and_resnext(depth, groups, width):
    res2 = 64 if depth < 50 else 256
    cfg = make_cfg(
        "resnet",
        **{
            "MODEL.RESNETS.DEPTH": depth,
            "MODEL.RESNETS.NUM_GROUPS": groups,
            "MODEL.RESNETS.WIDTH_PER_GROUP": width,
            "MODEL.RESNETS.RES2_OUT_CHANNELS": res2,
        },
    )
    backbone = build("resnet", cfg)
    blocks = {
        "res2": 3,
        "res3": {34: 4, 101: 4, 152: 8}[depth],
        "res4": {34: 6, 101: 23, 152: 36}[depth],
        "res5": 3,
    }
    for name, n in blocks.items():
        stage = getattr(backbone, name)
        assert isinstance(stage, DAGStage) and len(stage) == n and stage.wiring_name == name


@pytest.mark.parametrize("family", ["resnet", "mobilenetv2", "regnet"])
def test_freeze_at_freezes_stem_and_first_stages_with_their_routers(family):
    stages = ALL_STAGES[family]
    backbone = build(family, make_cfg(family, **{"MODEL.BACKBONE.FREEZE_AT": 3}))
    frozen = ["stem"] + stages[:2]
    for name, module in backbone.named_children():
        params = list(module.parameters())
        if name in frozen:
            assert all(not p.requires_grad for p in params), name
            assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules()), name
            assert any(isinstance(m, FrozenBatchNorm2d) for m in module.modules()), name
        elif name in stages:
            assert params and all(p.requires_grad for p in params), name
    assert isinstance(getattr(backbone, stages[0]), DAGStage)
    assert all(not p.requires_grad for p in getattr(backbone, stages[1]).routers.parameters())


@pytest.mark.parametrize(
    "key, value, match",
    [
        (
            "MODEL.DDW.DYNAMIC_STAGES",
            ["res9"],
            r"MODEL.DDW.DYNAMIC_STAGES = \['res9'\] is invalid: allowed stage names",
        ),
        ("MODEL.DDW.THRESHOLD", 1.5, r"MODEL.DDW.THRESHOLD = 1.5 is invalid: must be in \[0, 1\)"),
        (
            "MODEL.DDW.THRESHOLD_WARMUP_ITERS",
            -5,
            "THRESHOLD_WARMUP_ITERS = -5 is invalid: must be >= 0",
        ),
        (
            "MODEL.DDW.GATE",
            "hard",
            r"MODEL.DDW.GATE = 'hard' is invalid: allowed values are \['ste', 'soft'\]",
        ),
        ("MODEL.DDW.ROUTER_INIT_OTHER", 1.0, "ROUTER_INIT_OTHER"),
        ("MODEL.DDW.ROUTER_INIT_CHAIN", 1.5, "ROUTER_INIT_CHAIN = 1.5 is invalid"),
        ("MODEL.DDW.ROUTER_MODE", "fixed", "allowed values are \\['dynamic', 'shared'\\]"),
        ("MODEL.REGNET.PRESET", "RegNetZ", "MODEL.REGNET.PRESET = 'RegNetZ' is invalid"),
        ("MODEL.MOBILENETV2.OUT_FEATURES", ["res5"], "MODEL.MOBILENETV2.OUT_FEATURES"),
    ],
)
def test_invalid_config_values_name_the_key(key, value, match):
    family = "regnet" if "REGNET" in key else "mobilenetv2" if "MOBILENETV2" in key else "resnet"
    cfg = make_cfg(family)
    if key == "MODEL.DDW.DYNAMIC_STAGES" or "ROUTER" in key or "THRESHOLD" in key or "GATE" in key:
        cfg.MODEL.DDW.DYNAMIC_STAGES = (
            ALL_STAGES[family][:1] if key != "MODEL.DDW.DYNAMIC_STAGES" else value
        )
    if key != "MODEL.DDW.DYNAMIC_STAGES":
        node = cfg
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    with pytest.raises(ValueError, match=match):
        build(family, cfg)


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("DEPTH", 42, r"MODEL.RESNETS.DEPTH = 42 is invalid: allowed values are \[18, 34, 50"),
        ("RES2_OUT_CHANNELS", 32, "RES2_OUT_CHANNELS = 32 is invalid for DEPTH 18"),
        ("RES5_DILATION", 2, "RES5_DILATION = 2 is invalid for DEPTH 18"),
        ("DEFORM_ON_PER_STAGE", [False, False, False, True], "no deformable blocks"),
    ],
)
@pytest.mark.parametrize("builder", ["yaml", "lazy"])
def test_resnet_settings_detectron2_would_assert_on_name_the_key(key, value, match, builder):
    from ddw_detectron.config import ConfigValueError
    from ddw_detectron.modeling.resnet import lazy_backbone

    cfg = make_cfg("resnet", **{f"MODEL.RESNETS.{key}": value})
    with pytest.raises(ConfigValueError, match=match):
        build("resnet", cfg) if builder == "yaml" else lazy_backbone(cfg)


def test_missing_ddw_keys_is_a_clear_error():
    from detectron2.config import get_cfg

    cfg = get_cfg()
    with pytest.raises(ValueError, match="add_ddw_config"):
        from ddw_detectron.modeling.stage_config import check_ddw_config

        check_ddw_config(cfg, ["res2"])


def test_lazyconfig_stage_factory_and_yaml_keys_share_their_defaults():
    import inspect

    from ddw_detectron.modeling.dynamic import dag_stage_factory

    ddw = make_cfg("resnet").MODEL.DDW
    defaults = {k: p.default for k, p in inspect.signature(dag_stage_factory).parameters.items()}
    assert defaults == {
        "threshold": ddw.THRESHOLD,
        "gate": ddw.GATE,
        "router_hidden_dim": ddw.ROUTER_HIDDEN_DIM,
        "memory_efficient": ddw.MEMORY_EFFICIENT,
        "skip_unused_nodes": ddw.SKIP_UNUSED_NODES,
        "init_edge_weights": None,
        "router_mode": ddw.ROUTER_MODE,
        "aggregation_kernel": ddw.AGGREGATION_KERNEL,
        "keep_strongest_input": ddw.KEEP_STRONGEST_INPUT,
    }
    assert (ddw.THRESHOLD, ddw.SKIP_UNUSED_NODES, ddw.ROUTER_INIT_CHAIN) == (0.1, True, 0.0)


def _build_directly(family, dynamic_stages):
    """The LazyConfig path: the backbone class called with its arguments, no config."""
    from detectron2.modeling.backbone import BasicStem, ResNet
    from detectron2.modeling.backbone.regnet import ResBottleneckBlock, SimpleStem

    from ddw_detectron.modeling import DDWMobileNetV2, DDWRegNet, DDWResNet

    if family == "resnet":
        stem = BasicStem(in_channels=3, out_channels=64, norm="BN")
        stages = ResNet.make_default_stages(depth=18, norm="BN")
        return DDWResNet(stem, stages, dynamic_stages=dynamic_stages)
    if family == "mobilenetv2":
        return DDWMobileNetV2(width_mult=0.25, dynamic_stages=dynamic_stages)
    # RegNetY-400MF's generator without SE: 4 stages.
    return DDWRegNet(
        stem_class=SimpleStem,
        stem_width=32,
        block_class=ResBottleneckBlock,
        depth=16,
        w_a=27.89,
        w_0=48,
        w_m=2.09,
        group_width=8,
        dynamic_stages=dynamic_stages,
    )


@pytest.mark.parametrize(
    "family, misspelled", [("resnet", "res6"), ("mobilenetv2", "mb8"), ("regnet", "s5")]
)
def test_misspelled_stage_given_to_the_class_fails_as_the_yaml_path_does(family, misspelled):
    stages = ALL_STAGES[family][:1] + [misspelled]
    with pytest.raises(ValueError) as from_yaml:
        build(family, make_cfg(family, **{"MODEL.DDW.DYNAMIC_STAGES": stages}))
    with pytest.raises(ValueError) as from_class:
        _build_directly(family, stages)
    assert str(from_class.value) == str(from_yaml.value)
    assert f"MODEL.DDW.DYNAMIC_STAGES = {stages!r} is invalid" in str(from_class.value)
    assert isinstance(
        getattr(_build_directly(family, ALL_STAGES[family][:1]), ALL_STAGES[family][0]), DAGStage
    )
