"""Checks of a detection dataset before a run spends days on it: files, sizes, boxes,
categories and ids of a COCO json (or of any registered Detectron2 dataset)."""

import json
import math
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from PIL import Image
from tqdm import tqdm

__all__ = [
    "BLOCKING",
    "DatasetCheckError",
    "DatasetNotFoundError",
    "check_datasets",
    "require_datasets",
    "DatasetReport",
    "Problem",
    "check_coco",
    "check_dataset",
    "check_records",
    "check_training_datasets",
    "count_unusable_boxes",
    "image_problem",
    "read_coco_json",
    "read_image_size",
]

# Problems that break training or evaluation; the others are reported as warnings.
BLOCKING = (
    "missing_file",
    "unreadable_image",
    "size_mismatch",
    "unknown_category",
    "bad_box",
    "duplicate_image_id",
    "duplicate_annotation_id",
)
WARNINGS = ("degenerate_box", "box_outside_image", "no_annotations")


@dataclass
class Problem:
    kind: str
    detail: str
    file_name: str = ""


@dataclass
class DatasetReport:
    """Every problem found, and what was looked at."""

    name: str
    num_images: int = 0
    num_annotations: int = 0
    full_decode: bool = False
    problems: List[Problem] = field(default_factory=list)

    def counts(self) -> Dict[str, int]:
        found = Counter(p.kind for p in self.problems)
        return {kind: found.get(kind, 0) for kind in BLOCKING + WARNINGS}

    @property
    def blocking(self) -> List[Problem]:
        return [p for p in self.problems if p.kind in BLOCKING]

    def to_json(self) -> Dict:
        return {**asdict(self), "counts": self.counts(), "ok": not self.blocking}

    def summary(self) -> str:
        """A table: one row per kind of problem with its count and first example."""
        from tabulate import tabulate

        rows = []
        for kind, count in self.counts().items():
            example = next((p for p in self.problems if p.kind == kind), None)
            severity = "error" if kind in BLOCKING else "warning"
            rows.append(
                [
                    kind,
                    severity,
                    count,
                    f"{example.file_name} {example.detail}".strip() if example else "",
                ]
            )
        title = (
            f"{self.name}: {self.num_images} images, {self.num_annotations} annotations "
            f"({'full decode' if self.full_decode else 'headers only'})"
        )
        return (
            title
            + "\n"
            + tabulate(
                rows, headers=["problem", "severity", "count", "first example"], tablefmt="pipe"
            )
        )


def read_image_size(path: str, full_decode: bool = False):
    """``(width, height)`` of an image file after its EXIF orientation, from its header (or, with
    ``full_decode``, after decoding every pixel). Raises OSError (missing, empty, truncated, not
    an image) or ValueError."""
    with Image.open(path) as image:
        if full_decode:
            image.load()
        width, height = image.size
        orientation = image.getexif().get(0x0112, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def image_problem(
    path: str, width: Optional[int], height: Optional[int], full_decode: bool = False
):
    """``(kind, detail)`` of what is wrong with an image file (``missing_file``,
    ``unreadable_image``, ``size_mismatch`` against the annotated ``width`` x ``height``), or
    None."""
    if not os.path.isfile(path):
        return "missing_file", "no such file"
    try:
        size = read_image_size(path, full_decode)
    except (OSError, ValueError, SyntaxError) as exc:
        return "unreadable_image", f"{type(exc).__name__}: {exc}"
    if width is not None and height is not None and size != (width, height):
        return "size_mismatch", f"file is {size[0]}x{size[1]}, annotation says {width}x{height}"
    return None


def _check_file(
    report: DatasetReport, path: str, width: Optional[int], height: Optional[int], full_decode: bool
) -> None:
    problem = image_problem(path, width, height, full_decode)
    if problem is not None:
        report.problems.append(Problem(problem[0], problem[1], path))


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not registered, or its files are not where it says."""


def require_datasets(names) -> None:
    """Fail early with :class:`DatasetNotFoundError`, naming the dataset and the path, when a
    dataset of ``names`` is unknown (with the registered names closest to it) or its files are
    missing (with where Detectron2 looks for them). A generated dataset's metadata may carry
    ``make_files``, a callable that makes its files: it is called instead of the check."""
    from difflib import get_close_matches

    from detectron2.data import DatasetCatalog, MetadataCatalog

    for name in names:
        if name not in DatasetCatalog.list():
            close = get_close_matches(name, DatasetCatalog.list(), n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise DatasetNotFoundError(
                f"dataset {name!r} is not registered in Detectron2's DatasetCatalog{hint} "
                f"(a project registers its own; {len(DatasetCatalog.list())} are registered)"
            )
        metadata = MetadataCatalog.get(name).as_dict()
        if metadata.get("make_files") is not None:
            metadata["make_files"]()
            continue
        for attribute in ("json_file", "image_root"):
            path = metadata.get(attribute)
            if path and not os.path.exists(path):
                raise DatasetNotFoundError(
                    f"dataset {name!r}: {attribute} {path} does not exist. Put the dataset under "
                    "$DETECTRON2_DATASETS (now "
                    f"{os.environ.get('DETECTRON2_DATASETS', 'unset, so ./datasets')}) "
                    "in Detectron2's layout, e.g. coco/annotations/instances_train2017.json and "
                    "coco/train2017/"
                )


def check_datasets(cfg) -> None:
    """:func:`require_datasets` of ``DATASETS.TRAIN`` and ``DATASETS.TEST``."""
    require_datasets(list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST))


class DatasetCheckError(RuntimeError):
    """A dataset has problems that would break training, or its annotation file cannot be read;
    the message names the file (or is the checker's table)."""


def _box_numbers(box) -> Optional[List[float]]:
    """The four coordinates of ``box`` as finite floats, or None (missing, NaN, not numbers)."""
    try:
        numbers = [float(v) for v in box]
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == 4 and all(math.isfinite(v) for v in numbers) else None


def _has_area(width: float, height: float) -> bool:
    return width > 1e-6 and height > 1e-6


def _unusable_box(annotation: Dict) -> bool:
    """Whether a record's box is one training drops: not four finite numbers, or no area."""
    from detectron2.structures import BoxMode

    numbers = _box_numbers(annotation.get("bbox"))
    if numbers is None:
        return True
    mode = annotation.get("bbox_mode", BoxMode.XYWH_ABS)
    _, _, w, h = BoxMode.convert(numbers, mode, BoxMode.XYWH_ABS)
    return not _has_area(w, h)


def count_unusable_boxes(records: Sequence[Dict]) -> Tuple[int, int]:
    """``(boxes, images)``: the boxes of Detectron2 ``records`` that training drops without a
    word (NaN or missing coordinates, zero or negative size) and the images holding them."""
    per_image = [
        sum(_unusable_box(a) for a in record.get("annotations", ()) if not a.get("iscrowd", 0))
        for record in records
    ]
    return sum(per_image), sum(1 for n in per_image if n)


def _check_box(report: DatasetReport, box, width, height, path: str, where: str) -> None:
    numbers = _box_numbers(box)
    if numbers is None:
        report.problems.append(
            Problem("bad_box", f"{where}: box {box!r} is not four finite numbers", path)
        )
        return
    x, y, w, h = numbers
    if not _has_area(w, h):
        report.problems.append(
            Problem("degenerate_box", f"{where}: box {list(box)} has no area", path)
        )
    elif width and height and (x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1):
        report.problems.append(
            Problem(
                "box_outside_image",
                f"{where}: box {list(box)} leaves the {width}x{height} image",
                path,
            )
        )


def read_coco_json(json_file: str) -> Dict:
    """A COCO annotation file's contents; :class:`DatasetCheckError` names the file when it is
    not a JSON object."""
    try:
        with open(json_file, encoding="utf-8") as f:
            coco = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetCheckError(f"annotation file {json_file} is not valid JSON: {exc}") from exc
    if not isinstance(coco, dict):
        raise DatasetCheckError(
            f"annotation file {json_file} holds a JSON {type(coco).__name__}, not a COCO object "
            "with images, annotations and categories"
        )
    return coco


def check_coco(
    json_file: str, image_root: str, full_decode: bool = False, progress: bool = True
) -> DatasetReport:
    """Check a COCO-format json against its image folder."""
    coco = read_coco_json(json_file)
    images, annotations = coco.get("images", []), coco.get("annotations", [])
    report = DatasetReport(os.path.basename(json_file), len(images), len(annotations), full_decode)
    categories = {c["id"] for c in coco.get("categories", [])}
    for kind, items in (("duplicate_image_id", images), ("duplicate_annotation_id", annotations)):
        for item_id, count in Counter(i.get("id") for i in items).items():
            if count > 1:
                report.problems.append(Problem(kind, f"id {item_id} is used {count} times"))
    by_image: Dict[int, list] = {}
    for a in annotations:
        by_image.setdefault(a.get("image_id"), []).append(a)
    for image in tqdm(images, desc=f"checking {report.name}", disable=not progress, unit="img"):
        path = os.path.join(image_root, image["file_name"])
        _check_file(report, path, image.get("width"), image.get("height"), full_decode)
        own = by_image.get(image["id"], [])
        if not own:
            report.problems.append(Problem("no_annotations", "image has no annotation", path))
        for a in own:
            if a.get("category_id") not in categories:
                report.problems.append(
                    Problem(
                        "unknown_category",
                        f"annotation {a.get('id')}: category_id {a.get('category_id')}",
                        path,
                    )
                )
            _check_box(
                report,
                a.get("bbox"),
                image.get("width"),
                image.get("height"),
                path,
                f"annotation {a.get('id')}",
            )
    return report


def check_records(
    name: str,
    records: Iterable[Dict],
    num_classes: Optional[int] = None,
    full_decode: bool = False,
    progress: bool = True,
) -> DatasetReport:
    """Check Detectron2 dataset dicts (``file_name``, ``width``/``height``, ``annotations``
    with ``bbox``, ``bbox_mode``, ``category_id`` contiguous in ``[0, num_classes)``)."""
    from detectron2.structures import BoxMode

    records = list(records)
    report = DatasetReport(
        name, len(records), sum(len(r.get("annotations", [])) for r in records), full_decode
    )
    for image_id, count in Counter(r.get("image_id") for r in records if "image_id" in r).items():
        if count > 1:
            report.problems.append(
                Problem("duplicate_image_id", f"image_id {image_id} is used {count} times")
            )
    for record in tqdm(records, desc=f"checking {name}", disable=not progress, unit="img"):
        path = record["file_name"]
        _check_file(report, path, record.get("width"), record.get("height"), full_decode)
        if not record.get("annotations"):
            report.problems.append(Problem("no_annotations", "image has no annotation", path))
        for k, a in enumerate(record.get("annotations", [])):
            if num_classes is not None and not 0 <= a["category_id"] < num_classes:
                report.problems.append(
                    Problem(
                        "unknown_category", f"annotation {k}: category_id {a['category_id']}", path
                    )
                )
            box = _box_numbers(a.get("bbox"))
            if box is not None:
                box = BoxMode.convert(box, a.get("bbox_mode", BoxMode.XYWH_ABS), BoxMode.XYWH_ABS)
            _check_box(
                report,
                a.get("bbox") if box is None else box,
                record.get("width"),
                record.get("height"),
                path,
                f"annotation {k}",
            )
    return report


def check_dataset(
    name: Optional[str] = None,
    json_file: Optional[str] = None,
    image_root: Optional[str] = None,
    full_decode: bool = False,
    progress: bool = True,
) -> DatasetReport:
    """Check a registered dataset (through its COCO json when it has one, else its dataset
    dicts) or a COCO json with its image root."""
    if name is None:
        if not os.path.isfile(json_file):
            raise FileNotFoundError(f"annotation file {json_file} does not exist")
        return check_coco(json_file, image_root, full_decode, progress)
    from detectron2.data import DatasetCatalog, MetadataCatalog

    require_datasets([name])
    metadata = MetadataCatalog.get(name)
    json_file, image_root = metadata.get("json_file"), metadata.get("image_root")
    if json_file and image_root:
        if not os.path.isfile(json_file):
            raise FileNotFoundError(f"dataset {name!r}: annotation file {json_file} does not exist")
        report = check_coco(json_file, image_root, full_decode, progress)
        report.name = name
        return report
    classes = metadata.get("thing_classes")
    return check_records(
        name, DatasetCatalog.get(name), len(classes) if classes else None, full_decode, progress
    )


def check_training_datasets(names: Sequence[str], progress: bool = True) -> List[DatasetReport]:
    """The quick check (headers only) of every dataset in ``names``; raises
    :class:`DatasetCheckError` with the summaries when one would break training."""
    reports = [check_dataset(name, progress=progress) for name in names]
    bad = [r for r in reports if r.blocking]
    if bad:
        raise DatasetCheckError(
            "the dataset check found problems that would break training "
            "(details: python scripts/check_dataset.py --dataset NAME):\n"
            + "\n\n".join(r.summary() for r in bad)
        )
    return reports
