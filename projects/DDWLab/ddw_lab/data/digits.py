"""scikit-learn's bundled handwritten digits (1797 images of 8x8 pixels, no download) as a
torchvision ImageFolder for the classification trainer: ``<root>/{train,val}/<digit>/*.png``,
32x32 RGB, a fifth of the images (a fixed random draw) in ``val``. Written once into the dataset
cache (``$DDW_DATASETS_CACHE/digits_v1``), atomically as the shapes sets."""

from pathlib import Path

import numpy as np
from PIL import Image

from ddw_lab.data.cache import cache_root, ensure_generated

__all__ = ["digits_root", "write_digits"]

VERSION = "digits_v1"
IMAGE_SIZE = 32


def write_digits(root: Path, val_share: float = 0.2, seed: int = 0) -> Path:
    """Write the digits into ``root`` (ImageFolder layout) and return ``root``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.images))
    n_val = int(len(order) * val_share)
    for rank, index in enumerate(order):
        folder = root / ("val" if rank < n_val else "train") / str(digits.target[index])
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (digits.images[index] * (255.0 / 16.0)).astype(np.uint8)
        image = Image.fromarray(pixels).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
        image.convert("RGB").save(folder / f"{index:04d}.png")
    return root


def digits_root() -> Path:
    """``CLS.DATA_ROOT`` of the digits, written on first use."""
    return ensure_generated(cache_root(), VERSION, write_digits)
