"""The errors a run reports to its user as one message, without a traceback: each names its
cause (the file, the key, the dataset) and what to do. The command-line tools catch
:data:`USER_ERRORS` and exit with the message."""

import sys
from contextlib import contextmanager
from typing import Iterator, Type

from .checkpoint import (
    CheckpointReadError,
    CheckpointWriteError,
    FactsMismatchError,
    IncompleteBackboneError,
)
from .data.check import DatasetCheckError, DatasetNotFoundError
from .data.own import DatasetArgumentError
from .data.unreadable import UnreadableImageError
from .modeling.stage_config import ConfigValueError
from .utils.atomic import WriteError
from .utils.collapse import RunCollapsed
from .utils.run_lock import OutputDirBusyError, OutputDirUnusableError
from .utils.yaml_files import UnsafeConfigError

__all__ = ["USER_ERRORS", "exit_on_user_errors"]

USER_ERRORS = (
    CheckpointReadError,
    CheckpointWriteError,
    ConfigValueError,
    DatasetArgumentError,
    DatasetCheckError,
    DatasetNotFoundError,
    FactsMismatchError,
    IncompleteBackboneError,
    OutputDirBusyError,
    OutputDirUnusableError,
    UnreadableImageError,
    UnsafeConfigError,
    WriteError,
    FloatingPointError,
    RunCollapsed,
)


@contextmanager
def exit_on_user_errors(tool: str, *also: Type[BaseException]) -> Iterator[None]:
    """Within the block, a :data:`USER_ERRORS` exception (or one of ``also``) ends the program
    with ``<tool>: error: <message>`` (exit status 1) instead of a traceback."""
    try:
        yield
    except USER_ERRORS + also as exc:
        sys.exit(f"{tool}: error: {exc}")
