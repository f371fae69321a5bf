"""Writing a file so that readers see the old or the new version, never a part: the one helper
every writer of the project uses (checkpoints, results, logs, reports)."""

import errno
import os
import shutil
from typing import Callable

__all__ = ["WriteError", "atomic_save", "atomic_write", "atomic_write_text", "write_failure_cause"]

# Under this many free bytes at the moment a write failed, the disk was full.
_FULL_DISK_BYTES = 1 << 20


class WriteError(OSError):
    """A file could not be written (a full disk, no permission, ...); the previous version of the
    file, if any, is intact and no partial file is left."""


def write_failure_cause(exc: BaseException, path: str) -> str:
    """Why writing ``path`` failed, in the user's words: "the disk holding <folder> is full"
    when the error says so or (torch's writer says ``enforce fail ... unexpected pos``) the
    disk has under 1 MiB left; else the error itself. Call it before removing a partial
    file, which would free the space again."""
    folder = os.path.dirname(os.path.abspath(path))
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if not full:
        try:
            full = shutil.disk_usage(folder).free < _FULL_DISK_BYTES
        except OSError:
            pass
    if full:
        return f"the disk holding {folder} is full"
    return str(exc)


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """``write(temporary path)``, then rename the temporary file to ``path``, its folder made if
    missing (``output/`` on a fresh clone). On failure the
    temporary file is removed and :class:`WriteError` names ``path`` and the cause. Torch's
    writer reports a full disk as a ``RuntimeError`` (``inline_container.cc``, or
    ``basic_ios::clear``), which counts as a failed write too."""
    path = os.fspath(path)
    partial = f"{path}.incomplete"
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        write(partial)
        os.replace(partial, path)
    except (OSError, RuntimeError) as exc:
        cause = write_failure_cause(exc, path)
        if os.path.exists(partial):
            os.remove(partial)
        raise WriteError(f"could not write {path}: {cause}") from exc


def atomic_write_text(path: str, text: str) -> None:
    """:func:`atomic_write` of ``text`` (UTF-8)."""

    def write(partial: str) -> None:
        with open(partial, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


def atomic_save(obj, path: str) -> None:
    """:func:`atomic_write` of ``torch.save(obj)``."""
    import torch

    atomic_write(path, lambda partial: torch.save(obj, partial))
