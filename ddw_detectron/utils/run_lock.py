"""One run per output folder: a second run started into a folder that a running process holds
is refused (two runs would interleave ``metrics.json`` and break ``--resume``)."""

import fcntl
import os
from typing import IO, Dict

__all__ = ["LOCK_FILE", "OutputDirBusyError", "OutputDirUnusableError", "lock_output_dir"]

LOCK_FILE = ".ddw_run.lock"
# Folders this process holds: a later run in the same process (e.g. evaluation after training)
# may use them.
_HELD: Dict[str, IO] = {}


class OutputDirBusyError(RuntimeError):
    """Another running process writes into the output folder."""


class OutputDirUnusableError(RuntimeError):
    """The output folder cannot be made or written (a file of that name, no permission)."""


def lock_output_dir(folder: str) -> None:
    """Hold ``folder/.ddw_run.lock`` (an exclusive ``flock``) until this process ends; raise
    :class:`OutputDirBusyError` naming the process that holds it. The lock goes with the
    process, so a killed run leaves nothing to clean up."""
    folder = os.path.abspath(folder)
    if folder in _HELD:
        return
    path = os.path.join(folder, LOCK_FILE)
    try:
        os.makedirs(folder, exist_ok=True)
        handle = open(path, "a+")
    except OSError as exc:
        raise OutputDirUnusableError(
            f"OUTPUT_DIR {folder} cannot be used: {exc.strerror or exc}"
            + (" (a file of that name exists)" if os.path.isfile(folder) else "")
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise OutputDirBusyError(
            f"{folder} is in use by a running process ({holder}): wait for it to end, stop it, "
            "or give this run another OUTPUT_DIR"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} on {os.uname().nodename}")
    handle.flush()
    _HELD[folder] = handle
