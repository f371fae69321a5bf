"""ImageFolder data for pretraining: the ImageNet transforms (torchvision's augmentations as
config keys), batch MixUp/CutMix, corrupt images excluded."""

import functools
import logging
import os
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision import transforms
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import v2

__all__ = [
    "build_loaders",
    "AUTO_AUGMENT",
    "ImageFolderDataset",
    "build_batch_mix",
    "build_transforms",
    "collate_readable",
]

logger = logging.getLogger(__name__)


AUTO_AUGMENT = {
    "autoaugment": lambda: v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET),
    "randaugment": v2.RandAugment,
    "trivialaugment": v2.TrivialAugmentWide,
}


def build_transforms(cfg, train: bool):
    """Train: RandomResizedCrop (area share from ``CLS.CROP_SCALE_MIN`` to 1), horizontal flip
    (``CLS.HFLIP``), then ``CLS.AUTO_AUGMENT`` and ``CLS.RANDOM_ERASING`` when set. Val: resize
    the short side to ``CLS.RESIZE_SIZE`` + center crop ``CLS.INPUT_SIZE``. Output: float
    ``[3, H, W]`` in 0-255 in the channel order of ``INPUT.FORMAT`` ("RGB" or "BGR"), the
    detectors' input convention."""
    size, image_format = cfg.CLS.INPUT_SIZE, cfg.INPUT.FORMAT
    if image_format not in ("RGB", "BGR"):
        raise ValueError(
            f"INPUT.FORMAT = {image_format!r} is invalid for pretraining: use 'RGB' or 'BGR'"
        )
    if train:
        spatial = [transforms.RandomResizedCrop(size, scale=(cfg.CLS.CROP_SCALE_MIN, 1.0))]
        if cfg.CLS.HFLIP:
            spatial.append(transforms.RandomHorizontalFlip())
        spatial += _auto_augment(cfg.CLS.AUTO_AUGMENT)
    else:
        spatial = [transforms.Resize(cfg.CLS.RESIZE_SIZE), transforms.CenterCrop(size)]
    to_tensor = [
        transforms.PILToTensor(),
        transforms.ConvertImageDtype(torch.float32),
        transforms.Lambda(lambda t: t * 255.0),
    ]
    if image_format == "BGR":
        to_tensor.append(transforms.Lambda(lambda t: t.flip(0)))
    if train and cfg.CLS.RANDOM_ERASING > 0:
        to_tensor.append(v2.RandomErasing(cfg.CLS.RANDOM_ERASING, value=list(cfg.MODEL.PIXEL_MEAN)))
    return transforms.Compose(spatial + to_tensor)


def _auto_augment(name: str) -> list:
    if not name:
        return []
    if name not in AUTO_AUGMENT:
        raise ValueError(
            f"CLS.AUTO_AUGMENT = {name!r} is invalid: allowed values are {['', *AUTO_AUGMENT]}"
        )
    return [AUTO_AUGMENT[name]()]


def build_batch_mix(cfg):
    """``CLS.MIXUP_ALPHA`` / ``CLS.CUTMIX_ALPHA`` as one transform of ``(images [N, 3, H, W],
    targets [N])`` to ``(mixed images, soft targets [N, CLS.NUM_CLASSES])``, or None when both
    are 0."""
    alpha = {"MIXUP_ALPHA": cfg.CLS.MIXUP_ALPHA, "CUTMIX_ALPHA": cfg.CLS.CUTMIX_ALPHA}
    for key, value in alpha.items():
        if value < 0:
            raise ValueError(f"CLS.{key} = {value} is invalid: it must be >= 0 (0 turns it off)")
    mixes = []
    if alpha["MIXUP_ALPHA"] > 0:
        mixes.append(v2.MixUp(alpha=alpha["MIXUP_ALPHA"], num_classes=cfg.CLS.NUM_CLASSES))
    if alpha["CUTMIX_ALPHA"] > 0:
        mixes.append(v2.CutMix(alpha=alpha["CUTMIX_ALPHA"], num_classes=cfg.CLS.NUM_CLASSES))
    if not mixes:
        return None
    return mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)


class ImageFolderDataset(Dataset):
    """``root/<class>/<image>`` with classes sorted by name (torchvision's ImageFolder layout).

    An image that cannot be decoded gives ``None`` (and a warning naming it) instead of an
    exception; :func:`collate_readable` drops it and counts it.
    """

    def __init__(self, root: str, transform, classes: Optional[List[str]] = None):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root} does not exist")
        found = sorted(d.name for d in root.iterdir() if d.is_dir())
        if not found:
            raise FileNotFoundError(f"image folder {root} has no class sub-folders")
        if classes is not None and found != list(classes):
            raise ValueError(
                f"classes of {root} ({found}) differ from the training classes ({list(classes)})"
            )
        self.classes = found
        self.samples: List[Tuple[str, int]] = []
        for index, name in enumerate(found):
            files = sorted(
                str(p)
                for p in (root / name).iterdir()
                if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS
            )
            if not files:
                raise FileNotFoundError(
                    f"class folder {root / name} has no images ({', '.join(IMG_EXTENSIONS)})"
                )
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
            logger.warning(f"excluding unreadable image {path}: {exc}")
            return None
        return self.transform(image), target


def collate_readable(batch, mix=None):
    """Stack the readable samples and apply the batch transform ``mix`` (from
    :func:`build_batch_mix`) if given; returns ``(images, targets, number excluded)``, targets
    ``[N]`` class indices, or ``[N, classes]`` soft labels after ``mix``."""
    kept = [item for item in batch if item is not None]
    excluded = len(batch) - len(kept)
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long), excluded
    images = torch.stack([item[0] for item in kept])
    targets = torch.tensor([item[1] for item in kept], dtype=torch.long)
    if mix is not None:
        images, targets = mix(images, targets)
    return images, targets, excluded


def check_layout(data_root: str) -> None:
    for split in ("train", "val"):
        path = os.path.join(data_root, split)
        if not os.path.isdir(path):
            raise FileNotFoundError(
                f"CLS.DATA_ROOT/{split} ({path}) does not exist: pretraining expects the "
                "ImageFolder "
                "layout DATA_ROOT/train/<class>/*.JPEG and DATA_ROOT/val/<class>/*.JPEG"
            )


def build_loaders(cfg, rank: int, world_size: int, pin_memory: bool = False):
    """``(train sampler, train loader, val loader)`` of ``CLS.DATA_ROOT`` for process ``rank``
    of ``world_size``: each process reads its share; ValueError naming the key when the class
    folders disagree with ``CLS.NUM_CLASSES`` or no full training batch is left."""
    check_layout(cfg.CLS.DATA_ROOT)
    train_set = ImageFolderDataset(
        os.path.join(cfg.CLS.DATA_ROOT, "train"), build_transforms(cfg, True)
    )
    val_set = ImageFolderDataset(
        os.path.join(cfg.CLS.DATA_ROOT, "val"),
        build_transforms(cfg, False),
        classes=train_set.classes,
    )
    if len(train_set.classes) != cfg.CLS.NUM_CLASSES:
        raise ValueError(
            f"CLS.NUM_CLASSES = {cfg.CLS.NUM_CLASSES} but {cfg.CLS.DATA_ROOT}/train has "
            f"{len(train_set.classes)} class folders"
        )
    train_sampler = DistributedSampler(
        train_set,
        num_replicas=world_size,
        rank=rank,
        shuffle=True,
        seed=cfg.CLS.SEED,
    )
    val_sampler = DistributedSampler(val_set, num_replicas=world_size, rank=rank, shuffle=False)
    workers = cfg.CLS.NUM_WORKERS
    loader_args = dict(
        batch_size=cfg.CLS.BATCH_SIZE,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=cfg.CLS.PREFETCH_FACTOR if workers > 0 else None,
    )
    train_collate = functools.partial(collate_readable, mix=build_batch_mix(cfg))
    train_loader = DataLoader(
        train_set,
        sampler=train_sampler,
        drop_last=True,
        collate_fn=train_collate,
        **loader_args,
    )
    val_loader = DataLoader(
        val_set, sampler=val_sampler, collate_fn=collate_readable, **loader_args
    )
    if len(train_loader) == 0:
        raise ValueError(
            f"{len(train_set)} training images give no full batch of CLS.BATCH_SIZE = "
            f"{cfg.CLS.BATCH_SIZE} per process on {world_size} process(es)"
        )
    return train_sampler, train_loader, val_loader
