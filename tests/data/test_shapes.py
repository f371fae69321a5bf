import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def generate(cache: Path, split="tiny"):
    code = "from ddw_detectron.data import ensure_shapes_split; print(ensure_shapes_split(%r))" % split
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "DDW_DATASETS_CACHE": str(cache)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_generation_is_deterministic_and_safe_when_two_processes_start_at_once(tmp_path):
    first = [generate(tmp_path / "a"), generate(tmp_path / "a")]
    outputs = [p.communicate() for p in first]
    assert all(p.returncode == 0 for p in first), outputs
    folder = tmp_path / "a" / "shapes_v1" / "tiny"
    assert [o[0].strip() for o in outputs] == [str(folder)] * 2
    assert sorted(p.name for p in (tmp_path / "a" / "shapes_v1").iterdir() if not p.name.startswith(".")) == ["tiny"]
    other = generate(tmp_path / "b")
    other.communicate()
    again = tmp_path / "b" / "shapes_v1" / "tiny"
    assert (folder / "annotations.json").read_bytes() == (again / "annotations.json").read_bytes()
    for image in (folder / "images").iterdir():
        assert image.read_bytes() == (again / "images" / image.name).read_bytes()


def test_annotations_are_coco_with_boxes_and_polygons(tmp_path):
    p = generate(tmp_path)
    p.communicate()
    folder = tmp_path / "shapes_v1" / "tiny"
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
        assert MetadataCatalog.get(f"ddw_shapes_{split}").thing_classes == ["circle", "square", "triangle", "star"]
