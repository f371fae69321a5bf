"""Unreadable images in detection data: excluded in training, named in evaluation.

:class:`ExcludeUnreadable` wraps any dataset mapper (Detectron2's ``DatasetMapper`` or a project's
own). When the mapper cannot read a record's image (missing file, truncated or corrupt file,
zero bytes, a size that disagrees with the annotation), it warns naming the file and the reason,
appends ``{"file_name", "reason"}`` to a JSON-lines log (shared by the data-loader worker
processes, one ``O_APPEND`` write per line) and returns ``None``; :class:`MapReadable` then
takes the next record instead (deterministically, so a resumed run sees what an uninterrupted
one would). With ``exclude=False`` (evaluation) it raises :class:`UnreadableImageError` naming the
file instead.
"""

import json
import logging
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from detectron2.data.detection_utils import SizeMismatchError
from torch.utils.data import Dataset

__all__ = [
    "UNREADABLE_ERRORS",
    "MapReadable",
    "ExcludeUnreadable",
    "UnreadableImageError",
    "add_data_config",
    "read_exclusion_log",
    "refresh_exclusion_log",
]

logger = logging.getLogger(__name__)

# What reading an image raises for a missing, empty, truncated or corrupt file (PIL's
# UnidentifiedImageError is an OSError), and Detectron2's check against the annotated size.
UNREADABLE_ERRORS = (OSError, SyntaxError, SizeMismatchError)


class UnreadableImageError(RuntimeError):
    """An image of a dataset could not be read; the message names the file and the reason."""


class ExcludeUnreadable:
    """``mapper`` with unreadable images excluded (``exclude=True``) or reported by file name."""

    def __init__(
        self,
        mapper: Callable[[Dict], Optional[Dict]],
        log_path: Optional[str] = None,
        exclude: bool = True,
    ):
        self.mapper = mapper
        self.log_path = log_path
        self.exclude = exclude
        self._logged = set()  # file names this process has warned about and logged

    def __call__(self, record: Dict) -> Optional[Dict]:
        try:
            return self.mapper(record)
        except UNREADABLE_ERRORS as exc:
            file_name = record.get("file_name", "?")
            reason = f"{type(exc).__name__}: {exc}"
            if not self.exclude:
                raise UnreadableImageError(f"cannot read image {file_name}: {reason}") from exc
            if file_name not in self._logged:
                self._logged.add(file_name)
                logger.warning(f"excluding unreadable image {file_name}: {reason}")
                self._log(file_name, reason)
            return None

    def _log(self, file_name: str, reason: str) -> None:
        """One line per file: each process writes a file's line unless the log has it."""
        if not self.log_path or file_name in read_exclusion_log(self.log_path):
            return
        line = (json.dumps({"file_name": file_name, "reason": reason}) + "\n").encode()
        os.makedirs(os.path.dirname(self.log_path) or ".", exist_ok=True)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


class MapReadable(Dataset):
    """``records[i]`` mapped by ``mapper``; where the mapper returns None (an image it excluded),
    the next record in order takes its place. (Detectron2 v0.6's ``MapDataset`` retries a random
    record instead, through ``random.sample`` of a set, which Python 3.11 refuses.)"""

    def __init__(self, records: Sequence[Dict], mapper: Callable[[Dict], Optional[Dict]]):
        self.records = records
        self.mapper = mapper

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Dict:
        for offset in range(len(self.records)):
            data = self.mapper(self.records[(index + offset) % len(self.records)])
            if data is not None:
                return data
        raise UnreadableImageError(f"none of the {len(self.records)} training images is readable")


def read_exclusion_log(path: str) -> Dict[str, str]:
    """``{file name: reason}`` of the images a :class:`ExcludeUnreadable` logged (each once)."""
    if not os.path.isfile(path):
        return {}
    excluded: Dict[str, str] = {}
    with open(path) as f:
        for line in f:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill in mid-write
                continue
            excluded.setdefault(entry["file_name"], entry["reason"])
    return excluded


def format_files(files: Dict[str, str], limit: int = 20) -> List[str]:
    lines = [f"  {name}: {reason}" for name, reason in list(files.items())[:limit]]
    if len(files) > limit:
        lines.append(f"  ... and {len(files) - limit} more")
    return lines


def refresh_exclusion_log(
    path: str, resume: bool, sizes: Callable[[], Dict[str, Tuple[int, int]]]
) -> Optional[str]:
    """Bring the exclusion log up to date at the start of a run: a fresh run starts the count afresh
    (the log is removed); a resumed run checks every image the log lists again (decoded in full,
    against its annotated size from ``sizes()``, ``{file name: (width, height)}``) and keeps
    only those still unreadable. Returns what was done, for the user, or None."""
    from ..utils.atomic import atomic_write_text
    from .check import image_problem

    excluded = read_exclusion_log(path)
    if not excluded:
        return None
    if not resume:
        os.remove(path)
        return f"a new run: the {len(excluded)} images of the earlier run's {path} count afresh"
    annotated = sizes()
    still = {}
    for name, reason in excluded.items():
        width, height = annotated.get(name, (None, None))
        problem = image_problem(name, width, height, full_decode=True)
        if problem is not None:
            still[name] = f"{problem[0]}: {problem[1]}"
    lines = [json.dumps({"file_name": n, "reason": r}) + "\n" for n, r in still.items()]
    atomic_write_text(path, "".join(lines))
    fixed = len(excluded) - len(still)
    return (
        f"resume: checked the {len(excluded)} images {path} lists again: {fixed} readable now "
        f"(no longer counted), {len(still)} still unreadable"
    )


def add_data_config(cfg) -> None:
    """Keys of the data path (unreadable images), beside Detectron2's DATALOADER and TEST."""
    # Training excludes an image it cannot read (missing, empty, truncated or corrupt file, or a
    # size that disagrees with the annotation), names it in a warning and in
    # OUTPUT_DIR/unreadable_images.jsonl, and counts it (data/unreadable_images in metrics.json).
    # Past this share of the training set, the run stops with an error listing the files.
    cfg.DATALOADER.MAX_UNREADABLE_IMAGE_SHARE = 0.01
    # Evaluation stops at an unreadable image, naming it, unless this is True: then such images
    # are left out before inference (found by decoding each image once), count as images where
    # nothing was detected, and their number is printed beside the AP.
    cfg.TEST.EXCLUDE_UNREADABLE_IMAGES = False
