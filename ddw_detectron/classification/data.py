"""ImageFolder data for pretraining: the standard ImageNet transforms, corrupt images skipped."""

import logging
import os
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.datasets.folder import IMG_EXTENSIONS

__all__ = ["ImageFolderDataset", "build_transforms", "collate_skipping"]

logger = logging.getLogger(__name__)


def build_transforms(
    train: bool, input_size: int, resize_size: int, image_format: str, crop_scale_min: float = 0.08, hflip: bool = True
):
    """Train: RandomResizedCrop (area share from ``crop_scale_min`` to 1) + horizontal flip. Val: resize the short side to
    ``resize_size`` + center crop ``input_size``. Output: float ``[3, H, W]`` in 0-255 in the
    channel order of ``image_format`` ("RGB" or "BGR"), the detectors' input convention."""
    if train:
        spatial = [transforms.RandomResizedCrop(input_size, scale=(crop_scale_min, 1.0))]
        if hflip:
            spatial.append(transforms.RandomHorizontalFlip())
    else:
        spatial = [transforms.Resize(resize_size), transforms.CenterCrop(input_size)]
    to_tensor = [transforms.PILToTensor(), transforms.ConvertImageDtype(torch.float32), transforms.Lambda(lambda t: t * 255.0)]
    if image_format == "BGR":
        to_tensor.append(transforms.Lambda(lambda t: t.flip(0)))
    elif image_format != "RGB":
        raise ValueError(f"INPUT.FORMAT = {image_format!r} is invalid for pretraining: use 'RGB' or 'BGR'")
    return transforms.Compose(spatial + to_tensor)


class ImageFolderDataset(Dataset):
    """``root/<class>/<image>`` with classes sorted by name (torchvision's ImageFolder layout).

    An image that cannot be decoded gives ``None`` (and a warning naming it) instead of an
    exception; :func:`collate_skipping` drops it and counts it.
    """

    def __init__(self, root: str, transform, classes: Optional[List[str]] = None):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root} does not exist")
        found = sorted(d.name for d in root.iterdir() if d.is_dir())
        if not found:
            raise FileNotFoundError(f"image folder {root} has no class sub-folders")
        if classes is not None and found != list(classes):
            raise ValueError(f"classes of {root} ({found}) differ from the training classes ({list(classes)})")
        self.classes = found
        self.samples: List[Tuple[str, int]] = []
        for index, name in enumerate(found):
            files = sorted(
                str(p) for p in (root / name).iterdir() if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS
            )
            if not files:
                raise FileNotFoundError(f"class folder {root / name} has no images ({', '.join(IMG_EXTENSIONS)})")
            self.samples.extend((f, index) for f in files)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        try:
            with open(path, "rb") as f:
                image = Image.open(f)
                image = image.convert("RGB")
        except (OSError, ValueError, SyntaxError) as exc:
            logger.warning(f"skipping unreadable image {path}: {exc}")
            return None
        return self.transform(image), target


def collate_skipping(batch):
    """Stack the readable samples; returns ``(images, targets, number skipped)``."""
    kept = [item for item in batch if item is not None]
    skipped = len(batch) - len(kept)
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long), skipped
    images = torch.stack([item[0] for item in kept])
    targets = torch.tensor([item[1] for item in kept], dtype=torch.long)
    return images, targets, skipped


def check_layout(data_root: str) -> None:
    for split in ("train", "val"):
        path = os.path.join(data_root, split)
        if not os.path.isdir(path):
            raise FileNotFoundError(
                f"CLS.DATA_ROOT/{split} ({path}) does not exist: pretraining expects the ImageFolder "
                "layout DATA_ROOT/train/<class>/*.JPEG and DATA_ROOT/val/<class>/*.JPEG"
            )
