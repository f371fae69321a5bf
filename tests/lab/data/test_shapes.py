import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ddw_lab.data.shapes import VERSION


def generate(cache: Path, split="tiny"):
    code = (
        "from ddw_lab.data.shapes import ensure_shapes_split;"
        " print(ensure_shapes_split(%r))" % split
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, "DDW_DATASETS_CACHE": str(cache)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_generation_is_deterministic_and_safe_when_two_processes_start_at_once(tmp_path):
    first = [generate(tmp_path / "a"), generate(tmp_path / "a")]
    outputs = [p.communicate() for p in first]
    assert all(p.returncode == 0 for p in first), outputs
    folder = tmp_path / "a" / VERSION / "tiny"
    assert [o[0].strip() for o in outputs] == [str(folder)] * 2
    assert sorted(
        p.name for p in (tmp_path / "a" / VERSION).iterdir() if not p.name.startswith(".")
    ) == ["tiny"]
    other = generate(tmp_path / "b")
    other.communicate()
    again = tmp_path / "b" / VERSION / "tiny"
    assert (folder / "annotations.json").read_bytes() == (again / "annotations.json").read_bytes()
    for image in (folder / "images").iterdir():
        assert image.read_bytes() == (again / "images" / image.name).read_bytes()


def test_annotations_are_coco_with_boxes_and_polygons(tmp_path):
    p = generate(tmp_path)
    p.communicate()
    folder = tmp_path / VERSION / "tiny"
    coco = json.loads((folder / "annotations.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["circle", "square", "triangle", "star"]
    assert len(coco["images"]) == 8 and len(coco["annotations"]) >= 8
    sizes = {i["id"]: (i["width"], i["height"]) for i in coco["images"]}
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        width, height = sizes[a["image_id"]]
        assert 0 <= x and 0 <= y and x + w <= width + 1 and y + h <= height + 1 and w > 5 and h > 5
        xs, ys = a["segmentation"][0][0::2], a["segmentation"][0][1::2]
        assert min(xs) == x and min(ys) == y
        assert 0 < a["area"] <= w * h + 2 * (w + h)
    image = np.asarray(Image.open(folder / "images" / coco["images"][0]["file_name"]))
    assert image.shape == (160, 160, 3) and image.std() > 20


def test_registered_in_detectron2():
    from detectron2.data import DatasetCatalog, MetadataCatalog

    import ddw_detectron  # noqa: F401  (registers the datasets)

    for split in ("train", "val", "tiny"):
        assert f"ddw_shapes_{split}" in DatasetCatalog.list()
        assert MetadataCatalog.get(f"ddw_shapes_{split}").thing_classes == [
            "circle",
            "square",
            "triangle",
            "star",
        ]


@pytest.fixture
def small_classification_set(monkeypatch, tmp_path):
    from ddw_lab.data import shapes

    monkeypatch.setenv("DDW_DATASETS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(shapes.CLASSIFICATION_SPLITS, "train", (6, 11))
    monkeypatch.setitem(shapes.CLASSIFICATION_SPLITS, "val", (3, 12))
    return shapes


def _tree(folder: Path):
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_classification_set_is_an_image_folder_generated_deterministically(
    small_classification_set, tmp_path, monkeypatch
):
    shapes = small_classification_set
    root = shapes.shapes_classification_root()
    assert sorted(p.name for p in (root / "train").iterdir() if p.is_dir()) == sorted(
        shapes.CLASSIFICATION_CLASSES
    )
    crops = sorted((root / "train").glob("*/*.jpg"))
    assert len(crops) >= 6 + 6  # at least one object and one background crop per image
    assert Image.open(crops[0]).size == (shapes.CROP_SIZE, shapes.CROP_SIZE)
    monkeypatch.setenv("DDW_DATASETS_CACHE", str(tmp_path / "again"))
    again = shapes.shapes_classification_root()
    assert _tree(root) == _tree(again)


def test_classification_generation_is_atomic(small_classification_set, monkeypatch):
    shapes = small_classification_set
    calls = {"n": 0}
    make_image = shapes._make_image

    def failing(*args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("interrupted")
        return make_image(*args)

    monkeypatch.setattr(shapes, "_make_image", failing)
    with pytest.raises(KeyboardInterrupt):
        shapes.ensure_shapes_classification("train")
    root = shapes.dataset_root() / "classification"
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == []
    assert not [p for p in root.iterdir() if p.is_dir()]  # no temporary folder left behind
    monkeypatch.setattr(shapes, "_make_image", make_image)
    folder = shapes.ensure_shapes_classification("train")
    assert (folder / ".complete").is_file() and len(list(folder.glob("*/*.jpg"))) >= 12


def test_concurrent_classification_generation_gives_one_copy(small_classification_set):
    from concurrent.futures import ThreadPoolExecutor

    shapes = small_classification_set
    with ThreadPoolExecutor(2) as pool:
        folders = list(pool.map(shapes.ensure_shapes_classification, ["val", "val"]))
    assert folders[0] == folders[1]
    root = shapes.dataset_root() / "classification"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["val"]
