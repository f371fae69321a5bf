"""The embedded demo dataset: coloured, textured shapes on cluttered backgrounds, COCO layout.

``ddw_shapes_train`` (1280 images), ``ddw_shapes_val`` (64), ``ddw_shapes_tiny`` (8, for smoke
tests) and ``ddw_shapes_test`` (512, the comparison's) are registered on import and generated
deterministically on first use into ``$DDW_DATASETS_CACHE`` (default
``~/.cache/ddw_detectron``), under ``shapes_v2/{train,val}/`` with ``annotations.json``.
Generation is atomic (a temporary folder renamed into place, under a file lock), so two
processes starting at once produce one copy.
"""

import functools
import json
import math
from pathlib import Path
from typing import Dict, List

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from ddw_lab.data.cache import cache_root, ensure_generated

__all__ = [
    "CLASSES",
    "CLASSIFICATION_CLASSES",
    "SPLITS",
    "dataset_root",
    "ensure_shapes_classification",
    "ensure_shapes_split",
    "register_shapes",
    "shapes_classification_root",
]

CLASSES = ("circle", "square", "triangle", "star")
# v2: 1280 training images (v1: 320; the first 320 are the same images, val and tiny unchanged).
VERSION = "shapes_v2"
# split name -> (number of images, seed, image size); "tiny" is a smoke-test split.
IMAGE_SIZE = 160
# "test": the comparison's evaluation set (make compare), large enough to resolve a point of AP.
SPLITS = {
    "train": (1280, 1, IMAGE_SIZE),
    "val": (64, 2, IMAGE_SIZE),
    "tiny": (8, 3, IMAGE_SIZE),
    "test": (512, 4, IMAGE_SIZE),
}
# The classification set (pretraining): split -> (number of generated images, seed). Its seeds
# differ from the detection splits', so no validation image of detection is seen in pretraining.
CLASSIFICATION_SPLITS = {"train": (1200, 11), "val": (200, 12)}
CLASSIFICATION_CLASSES = CLASSES + ("background",)
CROP_SIZE = 64


def dataset_root() -> Path:
    return cache_root() / VERSION


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> List[float]:
    if kind == "circle":
        points = [
            (cx + r * math.cos(t), cy + r * math.sin(t))
            for t in np.linspace(0, 2 * math.pi, 32, endpoint=False)
        ]
    elif kind == "square":
        points = [
            (cx + r * math.cos(angle + k * math.pi / 2), cy + r * math.sin(angle + k * math.pi / 2))
            for k in range(4)
        ]
    elif kind == "triangle":
        points = [
            (
                cx + r * math.cos(angle + k * 2 * math.pi / 3),
                cy + r * math.sin(angle + k * 2 * math.pi / 3),
            )
            for k in range(3)
        ]
    else:  # five-pointed star
        points = []
        for k in range(10):
            radius = r if k % 2 == 0 else 0.45 * r
            t = angle + k * math.pi / 5
            points.append((cx + radius * math.cos(t), cy + radius * math.sin(t)))
    return [float(v) for p in points for v in p]


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    base = rng.uniform(60, 200, size=3)
    ramp = np.linspace(-40, 40, size)[:, None, None] * rng.uniform(-1, 1, size=3)
    noise = rng.normal(0, 12, size=(size, size, 3))
    array = np.clip(base + ramp + ramp.transpose(1, 0, 2) + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(array)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(6, 14)):  # clutter: lines and small blobs
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        x0, y0, x1, y1 = (float(v) for v in rng.uniform(0, size, size=4))
        if rng.random() < 0.6:
            draw.line([x0, y0, x1, y1], fill=colour, width=int(rng.integers(1, 4)))
        else:
            s = float(rng.uniform(2, 6))
            draw.ellipse([x0 - s, y0 - s, x0 + s, y0 + s], fill=colour)
    return image


def _texture(rng: np.random.Generator, size: int) -> Image.Image:
    colour = rng.integers(0, 256, size=3)
    kind = rng.integers(0, 3)
    array = np.empty((size, size, 3))
    array[:] = colour
    if kind == 1:  # stripes
        period = int(rng.integers(4, 9))
        stripes = (np.arange(size) // (period // 2)) % 2 == 0
        other = rng.integers(0, 256, size=3)
        array[stripes, :] = other
        if rng.random() < 0.5:
            array = array.transpose(1, 0, 2)
    elif kind == 2:  # speckle
        array += rng.normal(0, 40, size=(size, size, 3))
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def _overlaps(box, boxes, limit=0.25) -> bool:
    for other in boxes:
        ix = max(0.0, min(box[0] + box[2], other[0] + other[2]) - max(box[0], other[0]))
        iy = max(0.0, min(box[1] + box[3], other[1] + other[3]) - max(box[1], other[1]))
        inter = ix * iy
        if inter / min(box[2] * box[3], other[2] * other[3]) > limit:
            return True
    return False


def _make_image(rng: np.random.Generator, size: int):
    image = _background(rng, size)
    annotations, boxes = [], []
    for _ in range(int(rng.integers(1, 5))):
        for _attempt in range(20):
            kind = int(rng.integers(len(CLASSES)))
            r = float(rng.uniform(10, 30))
            cx, cy = (float(v) for v in rng.uniform(r, size - r, size=2))
            polygon = _polygon(CLASSES[kind], cx, cy, r, float(rng.uniform(0, 2 * math.pi)))
            xs, ys = polygon[0::2], polygon[1::2]
            box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
            if not _overlaps(box, boxes):
                break
        else:
            continue
        mask = Image.new("L", (size, size), 0)
        ImageDraw.Draw(mask).polygon(polygon, fill=255)
        image.paste(_texture(rng, size), (0, 0), mask)
        boxes.append(box)
        area = float(np.asarray(mask, dtype=bool).sum())
        annotations.append(
            {
                "category_id": kind + 1,
                "bbox": box,
                "segmentation": [polygon],
                "area": area,
                "iscrowd": 0,
            }
        )
    return image, annotations


def _generate(split: str, target: Path) -> None:
    count, seed, size = SPLITS[split]
    rng = np.random.default_rng(seed)
    (target / "images").mkdir(parents=True)
    images, annotations = [], []
    for index in tqdm(range(count), desc=f"generating ddw_shapes_{split}", unit="img", leave=False):
        image, objects = _make_image(rng, size)
        name = f"{index:05d}.jpg"
        image.save(target / "images" / name, quality=95)
        images.append({"id": index + 1, "file_name": name, "width": size, "height": size})
        for obj in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": index + 1, **obj})
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(CLASSES)]
    with open(target / "annotations.json", "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)


def ensure_shapes_split(split: str) -> Path:
    """Generate the split on first use and return its folder (``images/``, ``annotations.json``),
    under the dataset cache as it is now; the split's ``MetadataCatalog`` entry (read by
    Detectron2's evaluator) is pointed at that folder."""
    if split not in SPLITS:
        raise ValueError(f"unknown shapes split {split!r}; available: {list(SPLITS)}")
    folder = ensure_generated(dataset_root(), split, lambda folder: _generate(split, folder))
    _set_metadata(f"ddw_shapes_{split}", folder)
    return folder


# One callable per split: Detectron2's metadata refuses to set a key to another value.
_MAKE_FILES = {split: functools.partial(ensure_shapes_split, split) for split in SPLITS}


def _set_metadata(name: str, folder: Path) -> None:
    """``MetadataCatalog[name]`` for the split in ``folder``: set anew when the dataset cache
    moved since it was set (``DDW_DATASETS_CACHE`` changed in this process)."""
    from detectron2.data import MetadataCatalog

    json_file = str(folder / "annotations.json")
    if MetadataCatalog.get(name).get("json_file", json_file) != json_file:
        MetadataCatalog.remove(name)
    MetadataCatalog.get(name).set(
        json_file=json_file,
        image_root=str(folder / "images"),
        evaluator_type="coco",
        thing_classes=list(CLASSES),
        make_files=_MAKE_FILES[name[len("ddw_shapes_") :]],
    )


def _square_around(rng: np.random.Generator, box, size: int):
    """A square crop window around ``box`` (x, y, w, h) with a random margin and offset, kept
    inside the ``size`` x ``size`` image."""
    x, y, w, h = box
    side = min(size, max(w, h) * float(rng.uniform(1.15, 1.6)))
    cx = x + w / 2 + float(rng.uniform(-0.1, 0.1)) * side
    cy = y + h / 2 + float(rng.uniform(-0.1, 0.1)) * side
    left = min(max(0.0, cx - side / 2), size - side)
    top = min(max(0.0, cy - side / 2), size - side)
    return left, top, left + side, top + side


def _background_window(rng: np.random.Generator, boxes, size: int):
    """A square window that overlaps no object, or None when 20 tries find none."""
    for _ in range(20):
        side = float(rng.uniform(24, 80))
        left, top = (float(v) for v in rng.uniform(0, size - side, size=2))
        if not _overlaps([left, top, side, side], boxes, limit=0.0):
            return left, top, left + side, top + side
    return None


def _generate_classification(split: str, target: Path) -> None:
    count, seed = CLASSIFICATION_SPLITS[split]
    rng = np.random.default_rng(seed)
    for name in CLASSIFICATION_CLASSES:
        (target / name).mkdir(parents=True)
    for index in tqdm(
        range(count),
        desc=f"generating the shapes classification set ({split})",
        unit="img",
        leave=False,
    ):
        image, objects = _make_image(rng, IMAGE_SIZE)
        windows = [
            (CLASSES[o["category_id"] - 1], _square_around(rng, o["bbox"], IMAGE_SIZE))
            for o in objects
        ]
        background = _background_window(rng, [o["bbox"] for o in objects], IMAGE_SIZE)
        if background is not None:
            windows.append(("background", background))
        for k, (name, window) in enumerate(windows):
            crop = image.resize((CROP_SIZE, CROP_SIZE), Image.BILINEAR, box=window)
            crop.save(target / name / f"{index:05d}_{k}.jpg", quality=95)


def ensure_shapes_classification(split: str) -> Path:
    """The classification set cut from the shape generator, in torchvision's ImageFolder layout:
    ``<root>/{train,val}/<class>/*.jpg``, ``CROP_SIZE`` pixels square, one crop around each
    object (with a random margin) and one of plain background per generated image. Generated
    deterministically and atomically on first use, like the detection splits; returns the
    split's folder (its parent is the ``CLS.DATA_ROOT`` of pretraining)."""
    if split not in CLASSIFICATION_SPLITS:
        raise ValueError(
            f"unknown shapes classification split {split!r}; available: "
            f"{list(CLASSIFICATION_SPLITS)}"
        )
    root = dataset_root() / "classification"
    return ensure_generated(root, split, lambda folder: _generate_classification(split, folder))


def shapes_classification_root() -> Path:
    """``CLS.DATA_ROOT`` of the shapes classification set, both splits generated."""
    for split in CLASSIFICATION_SPLITS:
        ensure_shapes_classification(split)
    return dataset_root() / "classification"


def register_shapes() -> None:
    """Register ``ddw_shapes_{train,val,tiny,test}`` in Detectron2's catalogs (lazily
    generated: nothing is written until a dataset is first loaded)."""
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import load_coco_json

    for split in SPLITS:
        name = f"ddw_shapes_{split}"
        if name in DatasetCatalog.list():
            continue

        def load(split=split, name=name) -> List[Dict]:
            path = ensure_shapes_split(split)
            return load_coco_json(str(path / "annotations.json"), str(path / "images"), name)

        DatasetCatalog.register(name, load)
        _set_metadata(name, dataset_root() / split)
