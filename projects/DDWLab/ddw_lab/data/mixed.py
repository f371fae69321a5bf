"""``ddw_mixed``: a generated classification task where images differ in kind and a narrow
network's capacity binds (the comparison of ``make compare``; no download).

16 classes: scikit-learn's ten handwritten digits and six shapes (circle, square, triangle, star,
cross, ring). Each image holds one of them at a size drawn from a 4x range (7 to 28 pixels of
the 32-pixel image, uniform in log scale), at a random position and angle, in a random colour
that stands out from the background, on one of four textures (noisy gradient, stripes,
checkerboard, blobs), with a few thin distractors. The two splits draw their digits from
disjoint parts of scikit-learn's 1,797, so no validation digit is seen in training.

Drawn at 4x and reduced with area averaging; written deterministically and atomically into the
dataset cache (``$DDW_DATASETS_CACHE/mixed_v1``) as a torchvision ImageFolder,
``<root>/{train,val}/<class>/*.png``: the ``CLS.DATA_ROOT`` of the classification trainer.
"""

import math
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from ddw_lab.data.cache import cache_root, ensure_generated

__all__ = ["CLASSES", "IMAGE_SIZE", "SCALES", "SPLITS", "make_image", "mixed_root"]

VERSION = "mixed_v1"
IMAGE_SIZE = 32
SUPERSAMPLE = 4
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")
CLASSES = tuple(f"digit{d}" for d in range(10)) + SHAPES
# split -> (images, seed, the share of scikit-learn's digits it draws from: start, stop).
SPLITS: Dict[str, Tuple[int, int, Tuple[float, float]]] = {
    "train": (20000, 21, (0.0, 0.7)),
    "val": (5000, 22, (0.7, 1.0)),
}
# "full": the task; "tiny": its first images of each split, for smoke tests.
SCALES = {"full": 1.0, "tiny": 0.016}
SIZE_RANGE = (7.0, 28.0)  # object size in pixels of the 32-pixel image: a 4x range
MIN_CONTRAST = 70.0  # luminance difference between an object and its background
TEXTURE_CONTRAST = 30.0  # standard deviation of a texture's second colour around its first


def _luminance(rgb) -> float:
    return float(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """``[size, size, 3]`` float background of one of four kinds, in two colours close to each
    other (the texture is visible, the object stands out more)."""
    kind = int(rng.integers(4))
    a = rng.uniform(30, 225, size=3)
    b = np.clip(a + rng.normal(0, TEXTURE_CONTRAST, size=3), 0, 255)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    if kind == 0:  # noisy gradient
        t = xx * math.cos(rng.uniform(0, math.pi)) + yy * math.sin(rng.uniform(0, math.pi))
        t = (t - t.min()) / max(1e-6, np.ptp(t))
        array = a + (b - a) * t[..., None] + rng.normal(0, 10, size=(size, size, 3))
    elif kind in (1, 2):  # stripes at an angle, or a checkerboard
        period = rng.uniform(0.08, 0.25) * size
        angle = rng.uniform(0, math.pi)
        u = (xx * math.cos(angle) + yy * math.sin(angle)) // period
        v = (-xx * math.sin(angle) + yy * math.cos(angle)) // period
        mask = (u % 2 == 0) if kind == 1 else ((u + v) % 2 == 0)
        array = np.where(mask[..., None], a, b) + rng.normal(0, 6, size=(size, size, 3))
    else:  # blobs
        image = Image.new("RGB", (size, size), tuple(int(c) for c in a))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(15, 40))):
            x, y = rng.uniform(0, size, size=2)
            r = rng.uniform(0.02, 0.08) * size
            colour = np.clip(a + rng.normal(0, TEXTURE_CONTRAST, size=3), 0, 255)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(c) for c in colour))
        array = np.asarray(image, dtype=np.float64)
    return np.clip(array, 0, 255)


def _distractors(rng: np.random.Generator, image: Image.Image) -> None:
    draw, size = ImageDraw.Draw(image), image.size[0]
    for _ in range(int(rng.integers(1, 4))):
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        x0, y0, x1, y1 = (float(v) for v in rng.uniform(0, size, size=4))
        draw.line([x0, y0, x1, y1], fill=colour, width=int(rng.integers(1, SUPERSAMPLE)))


def _shape_mask(kind: str, size: int, cx: float, cy: float, r: float, angle: float) -> Image:
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)

    def ring(radii, steps):
        return [
            (
                cx + radii[k % len(radii)] * math.cos(angle + 2 * math.pi * k / steps),
                cy + radii[k % len(radii)] * math.sin(angle + 2 * math.pi * k / steps),
            )
            for k in range(steps)
        ]

    if kind in ("circle", "ring"):
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        if kind == "ring":
            inner = 0.6 * r
            draw.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=0)
    elif kind == "square":
        draw.polygon(ring([r], 4), fill=255)
    elif kind == "triangle":
        draw.polygon(ring([r], 3), fill=255)
    elif kind == "star":
        draw.polygon(ring([r, 0.45 * r], 10), fill=255)
    else:  # cross: a plus sign of two bars
        arm, half = r, 0.3 * r
        for t in (angle, angle + math.pi / 2):
            c, s = math.cos(t), math.sin(t)
            corners = [(-arm, -half), (arm, -half), (arm, half), (-arm, half)]
            draw.polygon([(cx + x * c - y * s, cy + x * s + y * c) for x, y in corners], fill=255)
    return mask


def _digit_mask(digit: np.ndarray, size: int, cx: float, cy: float, side: float, angle: float):
    pixels = Image.fromarray((digit * (255.0 / 16.0)).astype(np.uint8))
    side = max(2, int(round(side)))
    glyph = pixels.resize((side, side), Image.BILINEAR).rotate(
        math.degrees(angle), resample=Image.BILINEAR
    )
    mask = Image.new("L", (size, size), 0)
    mask.paste(glyph, (int(round(cx - side / 2)), int(round(cy - side / 2))))
    return mask


def _colour_against(rng: np.random.Generator, background: np.ndarray) -> Tuple[int, int, int]:
    reference = _luminance(background.reshape(-1, 3).mean(axis=0))
    for _ in range(20):
        colour = rng.integers(0, 256, size=3)
        if abs(_luminance(colour) - reference) >= MIN_CONTRAST:
            break
    return tuple(int(c) for c in colour)


def make_image(rng: np.random.Generator, label: int, digits: np.ndarray) -> Image.Image:
    """One ``IMAGE_SIZE`` RGB image of class ``CLASSES[label]``; a digit is drawn from
    ``digits`` (``[N, 8, 8]`` in 0-16)."""
    big = IMAGE_SIZE * SUPERSAMPLE
    background = _texture(rng, big)
    image = Image.fromarray(background.astype(np.uint8))
    _distractors(rng, image)
    side = math.exp(rng.uniform(*np.log(SIZE_RANGE))) * SUPERSAMPLE
    cx, cy = (float(v) for v in rng.uniform(side / 2, big - side / 2, size=2))
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    under = background[y0 : int(cy + side / 2) + 1, x0 : int(cx + side / 2) + 1]
    colour = _colour_against(rng, under)
    if label < 10:
        glyph = digits[int(rng.integers(len(digits)))]
        angle = float(rng.uniform(-0.3, 0.3))
        mask = _digit_mask(glyph, big, cx, cy, side, angle)
    else:
        angle = float(rng.uniform(0, 2 * math.pi))
        mask = _shape_mask(CLASSES[label], big, cx, cy, side / 2, angle)
    image.paste(Image.new("RGB", (big, big), colour), (0, 0), mask)
    return image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BOX)


def _split_digits(share: Tuple[float, float]) -> Tuple[np.ndarray, np.ndarray]:
    """The digits images and targets of a split's share of scikit-learn's set (fixed order)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.images))
    part = order[int(share[0] * len(order)) : int(share[1] * len(order))]
    return data.images[part], data.target[part]


def _generate(split: str, count: int, target: Path) -> None:
    _, seed, share = SPLITS[split]
    images, targets = _split_digits(share)
    by_digit = [images[targets == d] for d in range(10)]
    rng = np.random.default_rng(seed)
    for name in CLASSES:
        (target / name).mkdir(parents=True)
    labels = np.arange(count) % len(CLASSES)  # balanced classes
    for index in tqdm(range(count), desc=f"generating ddw_mixed ({split})", unit="img"):
        label = int(labels[index])
        digits = by_digit[label] if label < 10 else images
        image = make_image(rng, label, digits)
        image.save(target / CLASSES[label] / f"{index:05d}.png")


def mixed_root(scale: str = "full") -> Path:
    """``CLS.DATA_ROOT`` of ``ddw_mixed`` (``train/`` and ``val/``), generated on first use;
    ``scale`` ``"tiny"`` gives the first 1.6% of each split (320 / 80 images)."""
    if scale not in SCALES:
        raise ValueError(f"unknown ddw_mixed scale {scale!r}; available: {list(SCALES)}")
    root = cache_root() / (VERSION if scale == "full" else f"{VERSION}_{scale}")
    for split, (count, _, _) in SPLITS.items():
        size = int(round(count * SCALES[scale]))
        ensure_generated(root, split, lambda folder, s=split, n=size: _generate(s, n, folder))
    return root
