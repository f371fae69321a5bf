"""Export equals eager: the DDW detector traced and scripted to TorchScript and the backbone
scripted and in ONNX, on several images, including images whose wirings differ."""

import numpy as np
import pytest
import torch
from detectron2.modeling import build_model

from ddw_detectron import collect_wiring
from ddw_detectron.export import (
    export_backbone_onnx,
    script_backbone,
    script_detector,
    trace_detector,
)
from ddw_detectron.layers import DAGStage
from tests.helpers import ALL_STAGES, CONFIGS, build, make_cfg


def reactive_routers(model):
    """Routers that react to the image, with edge weights around the threshold 0.4, so that
    wirings, and which edges are kept, differ by image."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".routers." in name and name.endswith("fc.weight"):
                p.normal_(std=4.0 / p.shape[1] ** 0.5)
            if ".routers." in name and name.endswith("fc.bias"):
                p.fill_(-0.4)
    return model


@pytest.fixture(scope="module")
def model():
    cfg = make_cfg("resnet")
    cfg.merge_from_file(str(CONFIGS / "Base-DDW-RCNN-FPN.yaml"))
    cfg.MODEL.DDW.DYNAMIC_STAGES = ALL_STAGES["resnet"]
    cfg.MODEL.DDW.THRESHOLD = 0.4
    # stages of 3 to 6 nodes, where kept edges can differ; no stage cut off from the image
    # (an untrained network's wiring otherwise leaves some images with a constant stage).
    cfg.MODEL.RESNETS.DEPTH = 34
    cfg.MODEL.DDW.KEEP_STRONGEST_INPUT = True
    torch.manual_seed(0)
    return reactive_routers(build_model(cfg).eval())


def images(count=3):
    g = torch.Generator().manual_seed(1)
    return [torch.rand(3, 96, 128, generator=g) * 255 * (0.3 + 0.35 * k) for k in range(count)]


def test_wirings_of_the_test_images_differ(model):
    wirings = []
    with torch.no_grad():
        for image in images():
            model([{"image": image}])
            wirings.append(torch.cat([a.flatten() for a in collect_wiring(model).values()]))
    assert not torch.equal(wirings[0], wirings[1]) and not torch.equal(wirings[1], wirings[2])
    assert any(
        (w == 0).sum() > (wirings[0] == 0).sum() or (w == 0).sum() < (wirings[0] == 0).sum()
        for w in wirings[1:]
    )


def test_torchscript_detector_equals_eager(model):
    example = images(1)[0]
    traced, adapter = trace_detector(model, [{"image": example}])
    for image in images():
        with torch.no_grad():
            eager = model.inference([{"image": image}], do_postprocess=False)[0]
        exported = adapter.outputs_schema(traced(image))[0]["instances"]
        assert len(exported) == len(eager)
        torch.testing.assert_close(
            exported.pred_boxes.tensor, eager.pred_boxes.tensor, rtol=1e-4, atol=1e-3
        )
        torch.testing.assert_close(exported.scores, eager.scores, rtol=1e-4, atol=1e-4)
        assert torch.equal(exported.pred_classes, eager.pred_classes)


def test_scripted_detector_equals_eager_and_leaves_the_model_alone(model):
    predictor = model.roi_heads.box_predictor
    threshold, predictor.test_score_thresh = (
        predictor.test_score_thresh,
        0.0,
    )  # an untrained detector: keep its boxes
    try:
        scripted = script_detector(model)
        for image in images():
            with torch.no_grad():
                eager = model.inference([{"image": image}], do_postprocess=False)[0]
                exported = scripted.inference([{"image": image}], do_postprocess=False)[0]
            assert len(exported) == len(eager) > 0
            assert torch.equal(exported.pred_boxes.tensor, eager.pred_boxes.tensor)
            assert torch.equal(exported.scores, eager.scores)
            assert torch.equal(exported.pred_classes, eager.pred_classes)
    finally:
        predictor.test_score_thresh = threshold
    assert sum(isinstance(m, DAGStage) for m in model.modules()) == 4
    assert all(isinstance(stage, DAGStage) for stage in model.backbone.bottom_up.stages)


@pytest.mark.parametrize("family", ["resnet", "mobilenetv2"])
def test_scripted_backbone_equals_eager_at_any_batch(family):
    cfg = make_cfg(family, **{"MODEL.DDW.THRESHOLD": 0.4})
    torch.manual_seed(0)
    backbone = reactive_routers(build(family, cfg).eval())
    scripted = script_backbone(backbone)
    for batch in (1, 2):
        x = torch.rand(batch, 3, 64, 96, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            eager = backbone(x)
        outputs = scripted(x)
        assert sorted(outputs) == sorted(eager)
        for name in eager:
            assert torch.equal(outputs[name], eager[name]), name


def test_scripting_regnet_is_refused_with_the_reason():
    backbone = build("regnet", make_cfg("regnet")).eval()
    with pytest.raises(
        NotImplementedError, match="Detectron2 v0.6's RegNet blocks are not scriptable"
    ):
        script_backbone(backbone)


def test_onnx_backbone_equals_eager_for_other_sizes_and_batches(model, tmp_path):
    import onnxruntime

    backbone = model.backbone.bottom_up
    names = export_backbone_onnx(
        backbone, torch.rand(1, 3, 96, 128), str(tmp_path / "backbone.onnx")
    )
    session = onnxruntime.InferenceSession(str(tmp_path / "backbone.onnx"))
    x = torch.stack(images(3))[:, :, :64, :96] / 255.0
    outputs = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        eager = backbone(x)
    for name, value in zip(names, outputs):
        np.testing.assert_allclose(value, eager[name].numpy(), rtol=1e-4, atol=1e-4)


def test_unsupported_opset_is_refused(model, tmp_path):
    with pytest.raises(
        ValueError, match="opset 9 is not supported; DDW backbones need opset >= 13"
    ):
        export_backbone_onnx(
            model.backbone.bottom_up, torch.rand(1, 3, 64, 64), str(tmp_path / "x.onnx"), opset=9
        )


def test_export_of_a_training_model_is_refused(model, tmp_path):
    model.train()
    try:
        with pytest.raises(ValueError, match="export needs a model in eval mode"):
            trace_detector(model, [{"image": images(1)[0]}])
        with pytest.raises(ValueError, match="export needs a model in eval mode"):
            script_detector(model)
        with pytest.raises(ValueError, match="export needs a model in eval mode"):
            export_backbone_onnx(
                model.backbone.bottom_up, torch.rand(1, 3, 64, 64), str(tmp_path / "x.onnx")
            )
    finally:
        model.eval()
