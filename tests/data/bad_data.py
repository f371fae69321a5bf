"""A small COCO-layout dataset on disk with one image of each unreadable kind planted."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 64


def write_image(path: Path, seed: int, size=(SIZE, SIZE), fmt="JPEG") -> None:
    pixels = np.random.default_rng(seed).integers(
        0, 256, size=(size[1], size[0], 3), dtype=np.uint8
    )
    pixels[16:48, 16:48] = (250, 30, 30)
    Image.fromarray(pixels).save(path, fmt)


def write_dataset(
    root: Path,
    good: int = 10,
    defects=("missing", "truncated", "corrupt_png", "empty", "wrong_size"),
):
    """``root/images/*`` and ``root/annotations.json``: ``good`` readable images and one image
    of each kind in ``defects``. Returns ``(json path, image root, {kind: file path})``."""
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images, annotations, planted = [], [], {}
    names = [(f"good_{i:02d}.jpg", None) for i in range(good)] + [
        (f"{kind}.{'png' if 'png' in kind else 'jpg'}", kind) for kind in defects
    ]
    for index, (name, kind) in enumerate(names):
        path = images_dir / name
        if kind != "missing":
            write_image(
                path,
                index,
                size=(SIZE + 8, SIZE) if kind == "wrong_size" else (SIZE, SIZE),
                fmt="PNG" if name.endswith(".png") else "JPEG",
            )
        if kind == "truncated":
            path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        elif kind == "corrupt_png":
            data = bytearray(path.read_bytes())
            data[40:] = bytes(len(data) - 40)
            path.write_bytes(bytes(data))
        elif kind == "empty":
            path.write_bytes(b"")
        if kind:
            planted[kind] = str(path)
        images.append({"id": index + 1, "file_name": name, "width": SIZE, "height": SIZE})
        annotations.append(
            {
                "id": index + 1,
                "image_id": index + 1,
                "category_id": 1,
                "bbox": [16, 16, 32, 32],
                "area": 1024,
                "iscrowd": 0,
            }
        )
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "box"}]}
    json_path = root / "annotations.json"
    json_path.write_text(json.dumps(coco))
    return json_path, images_dir, planted


def register(name: str, root: Path, **kwargs):
    """Write and register the dataset ``name`` in Detectron2's catalogs (once per name)."""
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_instances

    json_path, images_dir, planted = write_dataset(root, **kwargs)
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        from detectron2.data import MetadataCatalog

        MetadataCatalog.remove(name)
    register_coco_instances(name, {}, str(json_path), str(images_dir))
    return planted
