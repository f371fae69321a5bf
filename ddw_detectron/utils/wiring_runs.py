"""Running a detector over image records one at a time and keeping each image's wiring (what
freezing, the wiring report and the comparison read), and the images that run on: a dataset's
records, scikit-image's bundled photographs."""

import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from detectron2.data import transforms as T
from detectron2.data.detection_utils import read_image

from ..layers import collect_wiring

__all__ = [
    "IMAGE_SUFFIXES",
    "SKIMAGE_PHOTOS",
    "WiringRun",
    "collect_over_records",
    "dominant_class",
    "skimage_photos",
]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
SKIMAGE_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
)


def skimage_photos(folder: Path) -> List[Dict]:
    """Write the photographs bundled with scikit-image (no download) into ``folder``."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for name in SKIMAGE_PHOTOS:
        try:
            image = getattr(data, name)()
        except Exception as exc:  # a photo that scikit-image would have to download
            print(f"excluding scikit-image photo {name}: {type(exc).__name__}", file=sys.stderr)
            continue
        path = folder / f"{name}.png"
        Image.fromarray(image).convert("RGB").save(path)
        records.append({"file_name": str(path)})
    return records


def dominant_class(record: Dict) -> Optional[int]:
    """The category with the largest total box area in a Detectron2 dataset record."""
    annotations = record.get("annotations") or []
    if not annotations:
        return None
    areas = Counter()
    for a in annotations:
        x0, y0, x1, y1 = a["bbox"]
        w, h = (x1, y1) if a.get("bbox_mode", 1) == 1 else (x1 - x0, y1 - y0)
        areas[a["category_id"]] += w * h
    return areas.most_common(1)[0][0]


@dataclass
class WiringRun:
    """What :func:`collect_over_records` saw: per-stage wirings ``{stage: [N, n, n]}`` of the
    ``N`` readable images, their records, RGB pictures and (with ``keep_predictions``) the
    model's outputs."""

    wirings: Dict[str, torch.Tensor]
    records: List[Dict] = field(default_factory=list)
    images: List[np.ndarray] = field(default_factory=list)
    predictions: List[Dict] = field(default_factory=list)


@torch.no_grad()
def collect_over_records(
    cfg, model, records, max_images: int = 200, keep_predictions: bool = False
) -> WiringRun:
    """Run ``model`` (in eval mode) on each readable image of ``records`` with the test-time
    resize of ``cfg``, one image at a time; an unreadable file is skipped with a message
    naming it."""
    augment = T.ResizeShortestEdge(
        [cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST
    )
    wirings: Dict[str, List[torch.Tensor]] = {}
    run = WiringRun(wirings={})
    for record in records:
        if len(run.records) >= max_images:
            break
        try:
            image = read_image(record["file_name"], format=cfg.INPUT.FORMAT)
        except Exception as exc:  # PIL raises several kinds for files that are not images
            logger.warning(
                f"excluding {record['file_name']}: not a readable image ({type(exc).__name__}: "
                f"{exc})"
            )
            continue
        resized = augment.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
        outputs = model([{"image": tensor, "height": image.shape[0], "width": image.shape[1]}])
        for stage, adjacency in collect_wiring(model).items():
            wirings.setdefault(stage, []).append(adjacency[0].cpu())
        run.records.append(record)
        run.images.append(
            np.ascontiguousarray(image[:, :, ::-1] if cfg.INPUT.FORMAT == "BGR" else image)
        )
        if keep_predictions:
            run.predictions.append({k: v.to("cpu") for k, v in outputs[0].items()})
    run.wirings = {k: torch.stack(v) for k, v in wirings.items()}
    return run
