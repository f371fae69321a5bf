"""``ddw_detectron.conversion``: torchvision classifiers converted with a classification config."""

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from ddw_detectron.checkpoint import save_detectron2_checkpoint
from ddw_detectron.classification import add_classification_config, build_classifier
from ddw_detectron.config import load_config
from ddw_detectron.conversion import convert_checkpoint, is_classification_config
from ddw_detectron.engine.checkpoint import DDWCheckpointer
from tests.helpers import ROOT

IMAGENET = ROOT / "configs" / "ImageNet"
MEAN, STD = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])


def torchvision_resnet18(classes: int) -> torch.nn.Module:
    """Random weights with non-trivial norm statistics and affine parameters."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=classes)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def photos() -> torch.Tensor:
    """Two scikit-image photographs, ``[2, 3, 96, 96]`` RGB in 0-255."""
    from skimage import data

    images = [
        Image.fromarray(getattr(data, name)()).convert("RGB").resize((96, 96))
        for name in ("astronaut", "coffee")
    ]
    return torch.stack(
        [torch.from_numpy(np.array(image)).permute(2, 0, 1).float() for image in images]
    )


def converted_classifier(tmp_path, config: str, classes: int, source: torch.nn.Module):
    tmp_path.mkdir(parents=True, exist_ok=True)
    torch.save(source.state_dict(), tmp_path / "torchvision.pth")
    cfg = load_config(
        str(IMAGENET / config), ["CLS.NUM_CLASSES", str(classes)], extra=[add_classification_config]
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
        tmp_path / "ddw", "DDW_R_18.yaml", 7, reference
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
        ValueError, match=f"cannot read {tmp_path / 'broken.pth'} as a PyTorch checkpoint"
    ):
        convert_checkpoint("torchvision", str(tmp_path / "broken.pth"), cfg, classification=True)
