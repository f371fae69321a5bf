"""``ddw_detectron.modeling.family``: a family is one description, read by every consumer."""

import pytest
import torch
from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from torch import nn

from ddw_detectron.checkpoint import convert_torchvision
from ddw_detectron.classification import add_classification_config, build_classifier
from ddw_detectron.layers import DAGStage
from ddw_detectron.modeling import FAMILIES, BackboneFamily, family_of, register_family
from ddw_detectron.modeling.dynamic import DDWBackbone, make_dag_stage
from tests.helpers import make_cfg


class ToyBackbone(DDWBackbone, Backbone):
    """Stem conv, then stages t1 and t2 of 3 conv blocks each (t2 at stride 2)."""

    def __init__(self, out_features, dynamic_stages, stage_factory, freeze_at=0):
        super().__init__()
        self.stem = ToyStem()
        self.stages = []
        for name, stride in (("t1", 1), ("t2", 2)):
            blocks = [
                nn.Conv2d(8, 8, 3, stride=stride if i == 0 else 1, padding=1) for i in range(3)
            ]
            self.add_module(name, nn.Sequential(*blocks))
            self.stages.append(getattr(self, name))
        self._out_features = list(out_features)
        self._out_feature_channels = {"t1": 8, "t2": 8}
        self._out_feature_strides = {"t1": 2, "t2": 4}
        self.make_stages_dynamic(dynamic_stages, stage_factory)
        self.freeze(freeze_at)

    def named_stages(self):
        return list(zip(("t1", "t2"), self.stages))

    def forward(self, x):
        t1 = self.t1(self.stem(x))
        outputs = {"t1": t1, "t2": self.t2(t1)}
        return {name: outputs[name] for name in self._out_features}


class ToyStem(nn.Conv2d):
    def __init__(self):
        super().__init__(3, 8, 3, stride=2, padding=1)

    def freeze(self):
        self.requires_grad_(False)


@BACKBONE_REGISTRY.register()
def build_ddw_toy_backbone(cfg, input_shape: ShapeSpec):
    return ToyBackbone(
        cfg.MODEL.TOY.OUT_FEATURES, cfg.MODEL.DDW.DYNAMIC_STAGES, lambda *a: make_dag_stage(cfg, *a)
    )


@pytest.fixture
def toy():
    family = register_family(
        BackboneFamily(
            name="toy",
            config_node="TOY",
            stage_names=("t1", "t2"),
            fpn_features=("t1", "t2"),
            last_feature="t2",
            torchvision_key=lambda key: (
                None if key.startswith("head.") else key.replace("features", "t")
            ),
            torchvision_classifier="head.",
        )
    )
    yield family
    FAMILIES.pop("toy")


def test_a_toy_family_added_through_its_description_works_everywhere(toy):
    cfg = make_cfg("resnet")
    add_classification_config(cfg)
    cfg.MODEL.TOY = CfgNode({"OUT_FEATURES": ["t1", "t2"]})
    cfg.MODEL.BACKBONE.NAME = toy.builders["bottom_up"]
    cfg.MODEL.DDW.DYNAMIC_STAGES = list(toy.stage_names)
    cfg.CLS.NUM_CLASSES = 5
    assert family_of(cfg) is toy

    classifier = build_classifier(cfg)
    assert classifier.feature == "t2" and isinstance(classifier.backbone.t2, DAGStage)
    assert classifier(torch.rand(2, 3, 32, 32) * 255).shape == (2, 5)
    assert list(toy.build_bottom_up(cfg, out_features=["t1"])(torch.rand(1, 3, 16, 16))) == ["t1"]

    state = {"features1.0.weight": torch.zeros(1), "head.weight": torch.ones(5, 8)}
    assert convert_torchvision(state, "toy") == (
        {"t1.0.weight": state["features1.0.weight"]},
        ["head.weight"],
    )
    assert set(convert_torchvision(state, "toy", classifier=True)[0]) == {
        "t1.0.weight",
        "head.weight",
    }

    cfg.MODEL.DDW.DYNAMIC_STAGES = ["t3"]
    with pytest.raises(ValueError, match=r"MODEL.DDW.DYNAMIC_STAGES = \['t3'\] is invalid"):
        toy.build_bottom_up(cfg)


def test_the_ddw_backbone_base_gives_a_new_family_checked_stages_and_freeze():
    frozen = ToyBackbone(["t2"], ["t1", "t2"], None, freeze_at=2)
    assert isinstance(frozen.t1, DAGStage) and frozen.stages[0] is frozen.t1
    assert not frozen.stem.weight.requires_grad
    assert not any(p.requires_grad for p in frozen.t1.parameters())
    assert frozen.t1.routers and all(p.requires_grad for p in frozen.t2.parameters())
    with pytest.raises(ValueError, match=r"MODEL.DDW.DYNAMIC_STAGES = \['t3'\] is invalid"):
        ToyBackbone(["t2"], ["t3"], None)


def test_families_are_the_three_supported_and_names_resolve():
    assert sorted(FAMILIES) == ["mobilenetv2", "regnet", "resnet"]
    for name, family in FAMILIES.items():
        for builder in family.builders.values():
            assert BACKBONE_REGISTRY.get(builder)
            cfg = make_cfg(name)
            cfg.MODEL.BACKBONE.NAME = builder
            assert family_of(cfg) is family
    cfg = make_cfg("resnet")
    cfg.MODEL.BACKBONE.NAME = "build_vit_backbone"
    with pytest.raises(ValueError, match="'build_vit_backbone' is not a DDW backbone"):
        family_of(cfg)
    with pytest.raises(ValueError, match="'resnet' is registered already"):
        register_family(FAMILIES["resnet"])
