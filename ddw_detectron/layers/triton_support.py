"""Whether Triton can run the fused aggregation here: the package, and its interpreter (which
runs kernels on the CPU, for tests)."""

import importlib.util
import os

__all__ = ["interpreting", "triton_available"]


def interpreting() -> bool:
    """True when Triton runs kernels in its interpreter (``TRITON_INTERPRET=1``), on the CPU."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0", "false", "False")


def triton_available() -> bool:
    """Whether the ``triton`` package can be imported."""
    return importlib.util.find_spec("triton") is not None
