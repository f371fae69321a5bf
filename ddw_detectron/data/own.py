"""A user's own COCO-format dataset, named on the command line: ``--dataset NAME=JSON:IMAGES``
registers ``NAME`` in Detectron2's catalogs (``register_coco_instances``) before the config's
``DATASETS.*`` is read, so that ``DATASETS.TRAIN ('NAME',)`` works without writing Python."""

import os
from typing import Iterable, List

__all__ = ["DATASET_ARGUMENT_HELP", "DatasetArgumentError", "register_dataset_arguments"]

DATASET_ARGUMENT_HELP = (
    "a registered dataset's name, or NAME=annotations.json:images/ to register a COCO-format "
    "json and its image folder as NAME"
)


class DatasetArgumentError(ValueError):
    """A ``--dataset`` argument that cannot be registered; the message names it."""


def _split(spec: str):
    name, _, rest = spec.partition("=")
    json_file, separator, image_root = rest.partition(".json:")
    if not name or not separator or not image_root:
        raise DatasetArgumentError(
            f"--dataset {spec!r}: expected a registered name or NAME=annotations.json:images/"
        )
    return name, json_file + ".json", image_root


def register_dataset_argument(spec: str) -> str:
    """Register ``spec`` (``NAME=JSON:IMAGES``) and return ``NAME``; a plain name is returned
    as it is (a dataset registered already). Raises :class:`DatasetArgumentError` naming the
    argument for a missing file or folder, or a name taken by another dataset."""
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import register_coco_instances

    if "=" not in spec:
        return spec
    name, json_file, image_root = _split(spec)
    if not os.path.isfile(json_file):
        raise DatasetArgumentError(f"--dataset {spec!r}: {json_file} is not a file")
    if not os.path.isdir(image_root):
        raise DatasetArgumentError(f"--dataset {spec!r}: {image_root} is not a folder")
    json_file, image_root = os.path.abspath(json_file), os.path.abspath(image_root)
    if name in DatasetCatalog.list():
        metadata = MetadataCatalog.get(name)
        if (metadata.get("json_file"), metadata.get("image_root")) == (json_file, image_root):
            return name
        raise DatasetArgumentError(
            f"--dataset {spec!r}: {name!r} is the name of another registered dataset; "
            "choose another name"
        )
    register_coco_instances(name, {}, json_file, image_root)
    return name


def register_dataset_arguments(specs: Iterable[str]) -> List[str]:
    """:func:`register_dataset_argument` of each of ``specs``; their names, in order."""
    return [register_dataset_argument(spec) for spec in specs or ()]
