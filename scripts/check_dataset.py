#!/usr/bin/env python
"""Check a detection dataset before training on it: missing and unreadable images, image sizes
that disagree with the annotations, degenerate or out-of-image boxes, unknown category ids,
images without annotations, duplicate ids.

    python scripts/check_dataset.py --dataset coco_2017_train            # any registered dataset
    python scripts/check_dataset.py --dataset mine=annotations.json:images/
    python scripts/check_dataset.py --json annotations.json --image-root images/ \
        --report report.json
    python scripts/check_dataset.py --dataset coco_2017_val --full-decode   # decode every pixel

Reads image headers only unless --full-decode (which also finds truncated files). Prints a
table; exits with status 1 when a problem would break training (missing, unreadable or
mis-sized images, unknown categories, duplicate ids), 0 otherwise (warnings only).
"""

import argparse
import importlib.util
import json
import sys

from ddw_detectron.data.check import DatasetCheckError, check_dataset
from ddw_detectron.data.own import DATASET_ARGUMENT_HELP, register_dataset_argument

if importlib.util.find_spec("ddw_lab"):  # the clone's lab: its generated datasets ddw_shapes_*
    import ddw_lab  # noqa: F401


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help=DATASET_ARGUMENT_HELP)
    source.add_argument("--json", help="a COCO-format annotation file (with --image-root)")
    parser.add_argument("--image-root", help="the folder the json's file names are relative to")
    parser.add_argument(
        "--full-decode",
        action="store_true",
        help="decode every image (slower; finds truncated files)",
    )
    parser.add_argument("--report", help="write the JSON report here")
    args = parser.parse_args(argv)
    if args.json and not args.image_root:
        parser.error("--json needs --image-root")
    try:
        name = register_dataset_argument(args.dataset) if args.dataset else None
        report = check_dataset(name, args.json, args.image_root, args.full_decode)
    except (DatasetCheckError, FileNotFoundError, KeyError, ValueError) as exc:
        print(f"check_dataset: error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report.to_json(), f, indent=2)
    if report.blocking:
        print(
            f"{len(report.blocking)} problems would break training (first: "
            f"{report.blocking[0].file_name} {report.blocking[0].detail})"
        )
        return 1
    print("no problem that would break training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
