"""``scripts/convert_pretrained.py`` end to end: torchvision and model-zoo sources, refusals."""

import pickle
import subprocess
import sys

import pytest
import torch
import torchvision
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, build_model

from ddw_detectron.checkpoint import DDWCheckpointer, convert_torchvision, match_backbone
from tests.helpers import ALL_STAGES, ROOT, make_cfg

R50 = {
    "MODEL.RESNETS.DEPTH": 50,
    "MODEL.RESNETS.RES2_OUT_CHANNELS": 256,
    "MODEL.RESNETS.STRIDE_IN_1X1": False,
}


def r50_cfg(dynamic=True):
    cfg = make_cfg("resnet", dynamic=dynamic, **R50)
    cfg.merge_from_file(str(ROOT / "configs" / "Base-DDW-RCNN-FPN.yaml"))
    cfg.MODEL.DDW.DYNAMIC_STAGES = ALL_STAGES["resnet"] if dynamic else []
    return cfg


def write_config(cfg, path):
    path.write_text(cfg.dump())
    return str(path)


def convert(tmp_path, source, cfg, state_or_path, *extra):
    if isinstance(state_or_path, dict):
        src = tmp_path / "source.pth"
        torch.save(state_or_path, src)
    else:
        src = state_or_path
    out = tmp_path / "converted.pth"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "convert_pretrained.py"),
            "--source",
            source,
            "--config-file",
            write_config(cfg, tmp_path / "cfg.yaml"),
            str(src),
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
    )
    return result, out


def test_torchvision_resnet50_loads_leaving_only_router_and_head_keys(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet50().eval()
    result, out = convert(tmp_path, "torchvision", r50_cfg(), reference.state_dict())
    assert result.returncode == 0, result.stderr
    assert "fc.weight" in result.stdout and "res2.routers.0.fc.weight" in result.stdout

    model = build_model(r50_cfg())
    checkpointer = DDWCheckpointer(model)
    checkpointer.load(str(out))
    incompatible = checkpointer.last_incompatible
    missing = incompatible.missing_keys
    assert missing, "router and head keys should be reported missing"
    for key in missing:
        assert ".routers." in key or not key.startswith("backbone.bottom_up."), key
    assert any(".routers." in k for k in missing)
    assert not incompatible.unexpected_keys and not incompatible.incorrect_shapes

    static = BACKBONE_REGISTRY.get("build_ddw_resnet_backbone")(
        r50_cfg(dynamic=False), ShapeSpec(channels=3)
    )
    DetectionCheckpointer(static).load(str(out))
    static.eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        ours = static(x)
        h = reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))
        for i, name in enumerate(["res2", "res3", "res4", "res5"], start=1):
            h = getattr(reference, f"layer{i}")(h)
            torch.testing.assert_close(ours[name], h, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "family, overrides, constructor",
    [
        (
            "mobilenetv2",
            {"MODEL.MOBILENETV2.OUT_FEATURES": ["mb2", "mb3", "mb5", "last"]},
            torchvision.models.mobilenet_v2,
        ),
        ("regnet", {"MODEL.REGNET.PRESET": "RegNetY-400MF"}, torchvision.models.regnet_y_400mf),
        (
            "resnet",
            {
                "MODEL.RESNETS.DEPTH": 50,
                "MODEL.RESNETS.NUM_GROUPS": 32,
                "MODEL.RESNETS.WIDTH_PER_GROUP": 4,
                "MODEL.RESNETS.RES2_OUT_CHANNELS": 256,
            },
            torchvision.models.resnext50_32x4d,
        ),
    ],
)
def test_torchvision_families_convert_to_every_non_router_key(family, overrides, constructor):
    backbone = BACKBONE_REGISTRY.get(f"build_ddw_{family}_backbone")(
        make_cfg(family, **overrides), ShapeSpec(channels=3)
    )
    converted, dropped = convert_torchvision(constructor().state_dict(), family)
    missing = match_backbone(converted, backbone.state_dict(), "torchvision", family)
    assert missing and all(".routers." in k for k in missing)
    assert dropped and all(k.startswith(("fc.", "classifier.")) for k in dropped)


def test_another_architecture_is_refused_with_both_names(tmp_path):
    result, out = convert(
        tmp_path, "torchvision", r50_cfg(), torchvision.models.resnet18().state_dict()
    )
    assert result.returncode != 0 and not out.exists()
    assert "torchvision ResNet (BasicBlock, blocks [2, 2, 2, 2], groups 1)" in result.stderr
    assert (
        "does not match the config's backbone (DDW resnet from build_ddw_resnet_fpn_backbone)"
        in result.stderr
    )


def test_detectron2_model_zoo_pkl(tmp_path):
    static = BACKBONE_REGISTRY.get("build_ddw_resnet_backbone")(
        r50_cfg(dynamic=False), ShapeSpec(channels=3)
    )
    weights = {
        k: v.numpy()
        for k, v in static.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    pkl = tmp_path / "R-50.pkl"
    with open(pkl, "wb") as f:
        pickle.dump({"model": weights, "__author__": "test"}, f)
    result, out = convert(tmp_path, "detectron2", r50_cfg(), str(pkl))
    assert result.returncode == 0, result.stderr
    dynamic = BACKBONE_REGISTRY.get("build_ddw_resnet_backbone")(r50_cfg(), ShapeSpec(channels=3))
    DetectionCheckpointer(dynamic).load(str(out))
    torch.testing.assert_close(dynamic.res4.node(3).conv2.weight, static.res4[3].conv2.weight)


def test_unreadable_checkpoint_is_named(tmp_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    result, _ = convert(tmp_path, "torchvision", r50_cfg(), str(bad))
    assert (
        result.returncode != 0 and "cannot read" in result.stderr and "broken.pth" in result.stderr
    )
