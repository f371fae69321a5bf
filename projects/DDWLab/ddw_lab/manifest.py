"""An output folder's manifest: the settings of the run it holds, so that a rerun with the same
settings reuses it and one with other settings is refused instead of mixing two runs."""

import json
from pathlib import Path
from typing import Dict

from ddw_detectron.utils.atomic import atomic_write_text

__all__ = ["FolderConflict", "claim_folder"]


class FolderConflict(RuntimeError):
    """The output folder holds a run of other settings."""


def claim_folder(folder: Path, name: str, settings: Dict, what: str, hint: str = "") -> None:
    """Check that ``folder`` holds no run of other ``settings`` (its manifest ``name``), then
    write the manifest. Raises :class:`FolderConflict` naming both settings."""
    folder = Path(folder)
    path = folder / name
    if path.is_file():
        theirs = json.loads(path.read_text())
        if theirs != settings:
            raise FolderConflict(
                f"{folder} holds {what} made with {json.dumps(theirs)}, not "
                f"{json.dumps(settings)}: {hint or 'give another output folder or delete it'}"
            )
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(str(path), json.dumps(settings, indent=2))
