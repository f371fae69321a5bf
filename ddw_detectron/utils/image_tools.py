"""What the image tools (scripts/demo.py, scripts/visualize_wiring.py) share: their command
line (a config, image files or folders, an output folder, trailing config overrides) and the
files their ``--input`` names."""

import argparse
import sys
from pathlib import Path
from typing import List, Sequence


def image_tool_parser(description: str, epilog: str = "") -> argparse.ArgumentParser:
    """A parser with Detectron2's demo conventions: ``--config-file``, ``--input`` (files or
    folders), ``--output`` and ``--opts KEY VALUE ...`` config overrides (last); the tool adds
    its own options."""
    parser = argparse.ArgumentParser(
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config-file", required=True, metavar="FILE", help="the model's config (YAML)"
    )
    parser.add_argument("--input", nargs="*", default=[], help="image files or folders")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument(
        "--opts",
        nargs=argparse.REMAINDER,
        default=[],
        metavar="KEY VALUE",
        help="config overrides, last on the command line, e.g. --opts MODEL.WEIGHTS model.pth",
    )
    return parser


def image_files(paths: Sequence[str], recursive: bool = False) -> List[Path]:
    """The files among ``paths`` and those in the folders among them (sorted; at every depth
    with ``recursive``). A path that does not exist is reported on stderr and left out; whether a
    file is a readable image is for the reader to find out."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = path.rglob("*") if recursive else path.iterdir()
            files.extend(sorted(p for p in found if p.is_file()))
        elif path.exists():
            files.append(path)
        else:
            print(f"excluding {path}: no such file", file=sys.stderr)
    return files


def warn_if_untrained(tool: str, cfg) -> None:
    """Say on stderr, loudly, that an empty ``MODEL.WEIGHTS`` means an untrained model."""
    if not cfg.MODEL.WEIGHTS:
        print(
            f"{tool}: WARNING: MODEL.WEIGHTS is empty, so the model is UNTRAINED: its detections "
            "and wirings are those of random weights. Give MODEL.WEIGHTS a trained checkpoint.",
            file=sys.stderr,
        )
