"""Generated ImageFolder datasets for the pretraining tests."""

from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)]
CLASSES = 3
# Pretraining overrides for a default make_image_folder folder: 8 crops of 32 pixels a batch,
# read in the main process.
# fmt: off
FOLDER_PRETRAINING = [
    "CLS.NUM_CLASSES", str(CLASSES), "CLS.BATCH_SIZE", "8", "CLS.INPUT_SIZE", "32",
    "CLS.RESIZE_SIZE", "36", "CLS.NUM_WORKERS", "0",
]
# fmt: on


def make_image_folder(
    root: Path, classes=CLASSES, train_per_class=16, val_per_class=4, size=40, seed=0
) -> Path:
    """An easy task: class k is a noisy image of colour k with a random bright square."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for k in range(classes):
            folder = root / split / f"class_{k}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                array = np.clip(
                    np.array(COLOURS[k]) + rng.normal(0, 30, size=(size, size, 3)), 0, 255
                )
                x, y = rng.integers(0, size - 10, size=2)
                array[y : y + 10, x : x + 10] = 255
                Image.fromarray(array.astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root
