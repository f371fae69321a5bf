"""``ddw_detectron.classification.data``: transforms from ``CLS.*`` keys and batch mixing."""

import pytest
import torch
from PIL import Image

from ddw_detectron.classification import add_classification_config
from ddw_detectron.classification.data import (
    AUTO_AUGMENT,
    build_batch_mix,
    build_transforms,
    collate_readable,
)
from ddw_detectron.config import load_config
from tests.helpers import CONFIGS

CONFIG = CONFIGS / "ImageNet" / "DDW_R_18.yaml"


def config(*opts):
    base = ["CLS.NUM_CLASSES", "4", "CLS.INPUT_SIZE", "48", "CLS.RESIZE_SIZE", "56"]
    return load_config(str(CONFIG), base + list(opts), extra=[add_classification_config])


def photo() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((64, 64))


def transformed(cfg, seed=0) -> torch.Tensor:
    torch.manual_seed(seed)
    return build_transforms(cfg, train=True)(photo())


def test_default_train_and_val_outputs():
    train = transformed(config())
    val = build_transforms(config(), train=False)(photo())
    assert train.shape == val.shape == (3, 48, 48) and train.dtype == torch.float32
    assert 0 <= float(val.min()) and float(val.max()) <= 255 and float(val.max()) > 1
    bgr = build_transforms(config("INPUT.FORMAT", "BGR"), train=False)(photo())
    torch.testing.assert_close(bgr, val.flip(0))


@pytest.mark.parametrize(
    "key, value",
    [("CLS.AUTO_AUGMENT", name) for name in AUTO_AUGMENT] + [("CLS.RANDOM_ERASING", "1.0")],
)
def test_each_augmentation_key_changes_the_training_images(key, value):
    plain = torch.stack([transformed(config(), seed) for seed in range(4)])
    augmented = torch.stack([transformed(config(key, value), seed) for seed in range(4)])
    assert augmented.shape == plain.shape
    assert not torch.equal(augmented, plain)


def test_random_erasing_fills_with_the_pixel_mean():
    erased = transformed(config("CLS.RANDOM_ERASING", "1.0"))
    plain = transformed(config())
    changed = (erased != plain).any(dim=0)
    mean = torch.tensor([123.675, 116.28, 103.53])
    assert changed.any()
    torch.testing.assert_close(erased[:, changed], mean[:, None].expand(3, int(changed.sum())))


def test_unknown_policy_is_named():
    with pytest.raises(
        ValueError,
        match=r"CLS.AUTO_AUGMENT = 'autoaugmnt' is invalid: allowed values are \['', 'autoaugment'",
    ):
        build_transforms(config("CLS.AUTO_AUGMENT", "autoaugmnt"), train=True)
    with pytest.raises(ValueError, match="CLS.MIXUP_ALPHA = -1.0 is invalid"):
        build_batch_mix(config("CLS.MIXUP_ALPHA", "-1.0"))


@pytest.mark.parametrize(
    "opts",
    [
        ("CLS.MIXUP_ALPHA", "0.4"),
        ("CLS.CUTMIX_ALPHA", "1.0"),
        ("CLS.MIXUP_ALPHA", "0.4", "CLS.CUTMIX_ALPHA", "1.0"),
    ],
)
def test_mixup_and_cutmix_give_soft_targets_the_loss_accepts(opts):
    cfg = config(*opts)
    assert build_batch_mix(config()) is None
    torch.manual_seed(0)
    batch = [(torch.rand(3, 16, 16) * 255, label) for label in (0, 1, 2, 3, 0, 1)]
    plain, labels, _ = collate_readable(batch)
    images, targets, excluded = collate_readable(batch + [None], mix=build_batch_mix(cfg))
    assert excluded == 1 and images.shape == plain.shape and not torch.equal(images, plain)
    assert targets.shape == (6, 4) and targets.dtype.is_floating_point
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(6))
    assert (targets.max(dim=1).values < 1).any(), "some targets must be mixtures"
    logits = torch.randn(6, 4, requires_grad=True)
    loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(logits, targets)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad.abs().sum() > 0
