"""The dataset cache, ``$DDW_DATASETS_CACHE`` (default ``~/.cache/ddw_detectron``), and its
atomic, locked generation of dataset folders on first use."""

import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["cache_root", "ensure_generated"]


def cache_root() -> Path:
    return Path(os.environ.get("DDW_DATASETS_CACHE", Path.home() / ".cache" / "ddw_detectron"))


def ensure_generated(root: Path, name: str, generate: Callable[[Path], None]) -> Path:
    """``root/name``, made by ``generate(folder)`` on first use: in a temporary folder renamed
    into place under a file lock, so an interrupted or concurrent generation leaves no partial
    copy. ``name/.complete`` marks a finished folder."""
    folder = root / name
    if (folder / ".complete").is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".complete").is_file():
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
            try:
                generate(tmp / name)
                (tmp / name / ".complete").touch()
                if folder.exists():
                    shutil.rmtree(folder)
                os.replace(tmp / name, folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return folder
