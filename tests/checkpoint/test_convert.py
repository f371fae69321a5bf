"""``ddw_detectron.checkpoint.convert``: torchvision classifiers converted with a classification
config; a config that contradicts the source's input convention is refused."""

import pytest
import torch

from ddw_detectron.checkpoint import (
    CheckpointReadError,
    DDWCheckpointer,
    convert_checkpoint,
    is_classification_config,
    save_detectron2_checkpoint,
)
from ddw_detectron.classification import add_classification_config, build_classifier
from ddw_detectron.config import load_config
from tests.helpers import ROOT, photos, torchvision_resnet18

IMAGENET = ROOT / "configs" / "ImageNet"
MEAN, STD = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])


# The start near the base network, as for fine-tuning from static weights
# (configs/ImageNet/DDW_R_50_from_torchvision.yaml).
NEAR_STATIC = ["MODEL.DDW.ROUTER_INIT_CHAIN", "0.99", "MODEL.DDW.ROUTER_INIT_OTHER", "0.05"]


def converted_classifier(tmp_path, config: str, classes: int, source: torch.nn.Module, opts=()):
    tmp_path.mkdir(parents=True, exist_ok=True)
    torch.save(source.state_dict(), tmp_path / "torchvision.pth")
    cfg = load_config(
        str(IMAGENET / config),
        ["CLS.NUM_CLASSES", str(classes), *opts],
        extra=[add_classification_config],
    )
    result = convert_checkpoint(
        "torchvision", str(tmp_path / "torchvision.pth"), cfg, classification=True
    )
    save_detectron2_checkpoint(result.weights, str(tmp_path / "converted.pth"), author="test")
    model = build_classifier(cfg).eval()
    checkpointer = DDWCheckpointer(model)
    checkpointer.load(str(tmp_path / "converted.pth"))
    return result, model, checkpointer.last_incompatible


def test_classification_configs_are_recognised():
    assert is_classification_config(str(IMAGENET / "DDW_R_18.yaml"))
    assert not is_classification_config(
        str(ROOT / "configs" / "COCO-Detection" / "faster_rcnn_DDW_R_50_FPN_1x.yaml")
    )


def test_static_conversion_gives_torchvision_logits_and_ddw_keeps_their_direction(tmp_path):
    reference = torchvision_resnet18(classes=7)
    images = photos()
    with torch.no_grad():
        expected = reference((images / 255.0 - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1))

    result, static, incompatible = converted_classifier(
        tmp_path / "static", "R_18.yaml", 7, reference
    )
    assert "head.weight" in result.weights and result.dropped == [] and result.missing == []
    assert incompatible.missing_keys == [] and incompatible.unexpected_keys == []
    with torch.no_grad():
        torch.testing.assert_close(static(images), expected, rtol=1e-4, atol=1e-4)

    result, ddw, incompatible = converted_classifier(
        tmp_path / "ddw", "DDW_R_18.yaml", 7, reference, NEAR_STATIC
    )
    assert result.missing and all(".routers." in k for k in result.missing)
    assert sorted(incompatible.missing_keys) == sorted(f"backbone.{k}" for k in result.missing)
    with torch.no_grad():
        cosine = torch.nn.functional.cosine_similarity(ddw(images), expected, dim=1)
    assert (cosine > 0.99).all(), cosine


def test_classifier_of_another_class_count_is_left_out_with_a_note(tmp_path):
    result, model, incompatible = converted_classifier(
        tmp_path, "R_18.yaml", 5, torchvision_resnet18(classes=1000)
    )
    assert result.notes == [
        "classifier not written: the source has 1000 classes, CLS.NUM_CLASSES is 5"
    ]
    assert "head.weight" not in result.weights and sorted(incompatible.missing_keys) == [
        "head.bias",
        "head.weight",
    ]


def test_unreadable_source_is_named(tmp_path):
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    cfg = load_config(str(IMAGENET / "R_18.yaml"), extra=[add_classification_config])
    with pytest.raises(
        CheckpointReadError, match=f"cannot read checkpoint {tmp_path / 'broken.pth'}"
    ):
        convert_checkpoint("torchvision", str(tmp_path / "broken.pth"), cfg, classification=True)
