"""MODEL.DDW.ROUTER_LR_FACTOR in both trainers."""

import pytest
from detectron2.modeling import build_model
from detectron2.solver import build_optimizer

from ddw_detectron.classification import (
    add_classification_config,
    build_classifier,
    parameter_groups,
)
from ddw_detectron.engine import DDWTrainer
from ddw_detectron.layers import is_router_parameter
from tests.helpers import CONFIGS, make_cfg


def detector_cfg(**overrides):
    cfg = make_cfg(**overrides)
    cfg.merge_from_file(str(CONFIGS / "Base-DDW-RCNN-FPN.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def lr_of(optimizer, model):
    by_id = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    return {name: by_id[id(p)] for name, p in model.named_parameters()}


def test_detection_router_groups_get_the_factor_and_nothing_else_changes():
    cfg = detector_cfg(
        **{"SOLVER.BASE_LR": 0.02, "SOLVER.BIAS_LR_FACTOR": 2.0, "MODEL.DDW.ROUTER_LR_FACTOR": 10.0}
    )
    model = build_model(cfg)
    scaled = lr_of(DDWTrainer.build_optimizer(cfg, model), model)
    plain = lr_of(build_optimizer(cfg, model), model)
    routers = [n for n in scaled if is_router_parameter(n)]
    assert routers and all(".routers." in n for n in routers)
    for name, lr in scaled.items():
        assert lr == pytest.approx(plain[name] * (10.0 if name in routers else 1.0)), name
    assert scaled["backbone.bottom_up.res3.routers.0.fc.bias"] == pytest.approx(0.02 * 2.0 * 10.0)
    assert scaled["backbone.bottom_up.res3.routers.0.fc.weight"] == pytest.approx(0.2)


def test_detection_default_factor_is_detectron2s_optimizer():
    cfg = detector_cfg()
    assert cfg.MODEL.DDW.ROUTER_LR_FACTOR == 1.0
    model = build_model(cfg)
    assert lr_of(DDWTrainer.build_optimizer(cfg, model), model) == lr_of(
        build_optimizer(cfg, model), model
    )


def test_pretraining_groups_put_routers_apart_without_weight_decay():
    cfg = make_cfg(**{"MODEL.BACKBONE.NAME": "build_ddw_resnet_backbone"})
    add_classification_config(cfg)
    cfg.CLS.NUM_CLASSES = 3
    model = build_classifier(cfg)
    groups = parameter_groups(model, 1e-4, False, router_lr_factor=5.0)
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay, routers = ([names[id(p)] for p in g["params"]] for g in groups)
    assert routers and all(is_router_parameter(n) for n in routers)
    assert groups[2]["lr_factor"] == 5.0 and groups[2]["weight_decay"] == 0.0
    assert (
        "backbone.res2.0.conv1.weight" in decay and "backbone.res2.0.conv1.norm.weight" in no_decay
    )
    assert sorted(decay + no_decay + routers) == sorted(names.values())


def test_negative_factor_is_refused_naming_the_key():
    cfg = detector_cfg(**{"MODEL.DDW.ROUTER_LR_FACTOR": -1.0})
    with pytest.raises(
        ValueError, match="MODEL.DDW.ROUTER_LR_FACTOR = -1.0 is invalid: must be >= 0"
    ):
        build_model(cfg)
