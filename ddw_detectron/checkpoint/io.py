"""Reading checkpoint files without running their code, and with errors that name the file.

``.pth`` files load weights-only (``torch.load(weights_only=True)``: tensors, containers,
numbers, strings). ``.pkl`` files (Detectron2's model zoo) go through an unpickler that admits
what those files hold, dicts, lists, tuples, strings, numbers and numpy arrays, and refuses
every other global (a ``__reduce__`` payload names one) with :class:`UnsafeFileError`. A file
that cannot be read (missing, truncated, corrupt, not a checkpoint) raises
:class:`CheckpointReadError` naming it. A ``.pth`` file is a zip archive with a CRC32 of each
entry, which ``torch.load`` does not check: every entry is checked before loading, so that bytes
damaged in the middle of a tensor are refused instead of loaded (``.pkl`` files carry no
checksum).
"""

import os
import pickle
import re
import zipfile
import zlib
from typing import Any

__all__ = [
    "CheckpointReadError",
    "UnsafeFileError",
    "check_zip_entries",
    "load_checkpoint_file",
    "load_pickle_file",
    "load_torch_file",
]


class CheckpointReadError(ValueError):
    """A checkpoint file could not be read; the message names the file and the cause."""


class UnsafeFileError(CheckpointReadError):
    """A checkpoint file holds something other than weights (code would run on loading)."""


# The globals plain weights files are rebuilt from, exactly these names: numpy arrays and scalars
# (numpy 1 and numpy 2 module names), dtypes, ordered dicts, and ``_codecs.encode``, which
# pickles of protocol 2 written by Python 3 use to rebuild ``bytes`` (Detectron2's model zoo).
_NUMPY_GLOBALS = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
}


class _WeightsUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str):
        super().__init__(file, encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise UnsafeFileError(
            f"{self.path} is refused: it is not a plain weights file (it asks to load "
            f"{module}.{name}, and loading it would run code). Detectron2 model-zoo .pkl files "
            "hold only dicts, lists, strings, numbers and numpy arrays."
        )


def load_pickle_file(path: str) -> Any:
    """A ``.pkl`` checkpoint through the weights-only unpickler (see the module docstring)."""
    try:
        with open(path, "rb") as f:
            return _WeightsUnpickler(f, path).load()
    except UnsafeFileError:
        raise
    except FileNotFoundError as exc:
        raise CheckpointReadError(f"checkpoint {path} does not exist") from exc
    except Exception as exc:  # truncated or corrupt pickles raise many kinds
        raise CheckpointReadError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {exc} (truncated or not a "
            "pickle file)"
        ) from exc


def check_zip_entries(path: str) -> None:
    """Raise :class:`CheckpointReadError` naming ``path`` and its first damaged entry when a
    zip-format checkpoint has an entry whose bytes do not match their CRC32 (or a damaged
    directory). Files of the legacy, non-zip format pass unchecked."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise CheckpointReadError(
            f"cannot read checkpoint {path}: its zip directory is damaged ({exc})"
        ) from exc
    if damaged is not None:
        raise CheckpointReadError(
            f"cannot read checkpoint {path}: entry {damaged} is damaged (its bytes do not "
            "match their CRC32): the file was changed after it was written; use another copy"
        )


def load_torch_file(path: str) -> Any:
    """A ``torch.save`` file, its entries' CRC32s checked (:func:`check_zip_entries`), loaded
    weights-only on the CPU (see the module docstring)."""
    import torch

    if not os.path.isfile(path):
        raise CheckpointReadError(f"checkpoint {path} does not exist")
    check_zip_entries(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if refused:
            raise UnsafeFileError(
                f"{path} is refused: it is not a plain weights file (it asks to load "
                f"{refused.group(1)}, and loading it would run code)"
            ) from exc
        raise CheckpointReadError(
            f"cannot read checkpoint {path}: not a PyTorch checkpoint (its pickle is corrupt)"
        ) from exc
    except Exception as exc:  # zip reader errors, EOFError, KeyError of a cut pickle, ...
        raise CheckpointReadError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {exc} (truncated, corrupt or "
            "not a PyTorch checkpoint)"
        ) from exc


def load_checkpoint_file(path: str) -> Any:
    """:func:`load_pickle_file` for ``.pkl`` files, :func:`load_torch_file` otherwise."""
    return load_pickle_file(path) if str(path).endswith(".pkl") else load_torch_file(path)
