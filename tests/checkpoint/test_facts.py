"""The facts a checkpoint carries: listed one line per key, checked on loading and converting;
every shipped COCO config takes an export of the ImageNet config of its backbone without a
mismatch."""

import re

import pytest
import torch
import torchvision
from detectron2.modeling import build_model

from ddw_detectron.checkpoint import (
    DDWCheckpointer,
    FactsMismatchError,
    convert_checkpoint,
    convert_ddw,
    mismatches,
    model_facts,
    save_detectron2_checkpoint,
)
from ddw_detectron.classification import add_classification_config, build_classifier
from ddw_detectron.config import load_config
from tests.helpers import ROOT

pytestmark = pytest.mark.long(60)

COCO = sorted(
    str(p.relative_to(ROOT / "configs"))
    for folder in ("COCO-Detection", "COCO-InstanceSegmentation")
    for p in (ROOT / "configs" / folder).glob("*.yaml")
)


def imagenet_config_of(coco: str) -> str:
    """The ImageNet config whose export the COCO config's README line says to give it."""
    name = re.sub(r"^(faster_rcnn|retinanet|mask_rcnn)_", "", coco.split("/")[1])
    name = re.sub(r"_FPN_\dx\.yaml$", "", name)
    return f"ImageNet/{name.replace('MobileNetV2', 'MobileNetV2_1.0')}.yaml"


def test_every_coco_config_has_its_imagenet_config():
    assert len(COCO) == 24
    for coco in COCO:
        assert (ROOT / "configs" / imagenet_config_of(coco)).is_file(), coco


def export(tmp_path, imagenet: str):
    """What pretraining with the config exports (Pretrainer.export_backbone), random weights."""
    cfg = load_config(str(ROOT / "configs" / imagenet), extra=[add_classification_config])
    weights, _ = convert_ddw({"model": build_classifier(cfg).state_dict()})
    path = tmp_path / (imagenet.replace("/", "_") + ".pth")
    save_detectron2_checkpoint(weights, str(path), "test", model_facts(cfg))
    return path


@pytest.mark.parametrize("coco", COCO)
def test_coco_config_loads_the_export_of_its_imagenet_config_without_mismatch(tmp_path, coco):
    weights = export(tmp_path, imagenet_config_of(coco))
    cfg = load_config(str(ROOT / "configs" / coco), ["MODEL.WEIGHTS", str(weights)])
    for node in ("MOBILENETV2", "REGNET", "RESNETS"):
        if cfg.MODEL[node].NORM == "SyncBN":
            cfg.MODEL[node].NORM = "BN"  # SyncBN needs a process group
    model = build_model(cfg)
    checkpointer = DDWCheckpointer(model, facts=model_facts(cfg))
    checkpointer.load(str(weights))  # raises on a fact mismatch or an unloaded backbone tensor
    missing = checkpointer.last_incompatible.missing_keys
    # num_batches_tracked is a counter, not a weight (the checkpointer does not require it):
    # upstream's FrozenBatchNorm2d keeps the one of the BatchNorm it replaced when freezing.
    weights_missing = [k for k in missing if not k.endswith(".num_batches_tracked")]
    assert not [k for k in weights_missing if k.startswith("backbone.bottom_up.")]


def test_mismatches_name_each_key_with_both_values():
    theirs = {"INPUT.FORMAT": "RGB", "MODEL.PIXEL_STD": [58.4, 57.1, 57.4], "norm": "batch"}
    ours = {"INPUT.FORMAT": "BGR", "MODEL.PIXEL_STD": [1.0, 1.0, 1.0], "norm": "batch"}
    assert mismatches(theirs, ours) == [
        "  INPUT.FORMAT: 'RGB' in the weights, 'BGR' in the config",
        "  MODEL.PIXEL_STD: [58.4, 57.1, 57.4] in the weights, [1.0, 1.0, 1.0] in the config",
    ]


def test_static_weights_fit_any_wiring_but_a_learned_wiring_must_match():
    static = {"MODEL.DDW.DYNAMIC_STAGES": [], "MODEL.DDW.ROUTER_HIDDEN_DIM": 0}
    dynamic = {"MODEL.DDW.DYNAMIC_STAGES": ["res2", "res3"], "MODEL.DDW.ROUTER_HIDDEN_DIM": 64}
    assert mismatches(static, dynamic) == []
    assert mismatches(dynamic, {**dynamic, "MODEL.DDW.DYNAMIC_STAGES": []}) == [
        "  MODEL.DDW.DYNAMIC_STAGES: ['res2', 'res3'] in the weights, [] in the config"
    ]


def detection_cfg(*opts):
    config = ROOT / "configs" / "Demo" / "faster_rcnn_DDW_R_34_FPN_shapes.yaml"
    return load_config(str(config), list(opts))


@pytest.mark.parametrize(
    "opts, line",
    [
        (["INPUT.FORMAT", "BGR"], "INPUT.FORMAT: 'RGB' in the weights, 'BGR' in the config"),
        (["MODEL.RESNETS.STRIDE_IN_1X1", "True"], "STRIDE_IN_1X1: False in the weights, True"),
        (["MODEL.RESNETS.DEPTH", "18"], "MODEL.RESNETS.DEPTH: 34 in the weights, 18 in the config"),
    ],
)
def test_a_handoff_into_another_setting_is_refused_naming_the_key(tmp_path, opts, line):
    weights = export(tmp_path, "Demo/pretrain_DDW_R_34_shapes.yaml")
    cfg = detection_cfg(*opts)
    model = build_model(cfg)
    with pytest.raises(FactsMismatchError, match=re.escape(line)) as error:
        DDWCheckpointer(model, facts=model_facts(cfg)).load(str(weights))
    assert str(weights) in str(error.value)


def test_the_converter_refuses_a_config_against_torchvision_s_convention(tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet18.pth")
    cfg = load_config(
        str(ROOT / "configs" / "COCO-Detection" / "faster_rcnn_DDW_R_50_FPN_1x.yaml"),
        ["MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64"]
        + ["INPUT.FORMAT", "BGR", "MODEL.RESNETS.STRIDE_IN_1X1", "True"],
    )
    with pytest.raises(FactsMismatchError) as error:
        convert_checkpoint("torchvision", str(tmp_path / "resnet18.pth"), cfg)
    message = str(error.value)
    assert "INPUT.FORMAT: 'RGB' in the weights, 'BGR' in the config" in message
    assert "MODEL.RESNETS.STRIDE_IN_1X1: False in the weights, True in the config" in message
    cfg.defrost()
    cfg.INPUT.FORMAT, cfg.MODEL.RESNETS.STRIDE_IN_1X1 = "RGB", False
    result = convert_checkpoint("torchvision", str(tmp_path / "resnet18.pth"), cfg)
    assert result.facts["INPUT.FORMAT"] == "RGB" and len(result.weights) == 100  # all but fc
