"""Running one long job (a training run) in a fresh process, and the environment it gets."""

import multiprocessing
import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

__all__ = [
    "STEADY_MALLOC",
    "JobFailed",
    "banner",
    "run_in_child",
    "steady_malloc",
    "steady_malloc_active",
]

# glibc malloc that keeps freed memory instead of returning every large block to the system
# (which is then page-faulted in again on the next allocation): CPU training steps run about
# 10% faster, and timings of two models stop differing by allocator luck. A user's own setting
# of these variables wins. glibc reads them when a process starts, so they apply to processes
# started with them in their environment.
STEADY_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}


def steady_malloc_active() -> bool:
    """Whether this process started with :data:`STEADY_MALLOC`."""
    return all(os.environ.get(key) == value for key, value in STEADY_MALLOC.items())


class JobFailed(RuntimeError):
    """A job run by :func:`run_in_child` ended with an error or was killed."""


@contextmanager
def steady_malloc() -> Iterator[None]:
    """Within the block, processes started get :data:`STEADY_MALLOC` (unless already set)."""
    added = {k: v for k, v in STEADY_MALLOC.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _call(function: Callable, args: tuple) -> None:
    function(*args)


def run_in_child(name: str, function: Callable, *args) -> None:
    """Call ``function(*args)`` (a module-level function of the library) in a fresh Python
    process (``spawn``) with :data:`STEADY_MALLOC`, wait for it, and raise :class:`JobFailed`
    naming ``name`` if it fails. Each training run gets clean global state (loggers, random
    generators, allocator) and a kill of the caller's process group ends it too."""
    context = multiprocessing.get_context("spawn")
    with steady_malloc():
        process = context.Process(target=_call, args=(function, args), name=name)
        process.start()
    process.join()
    if process.exitcode != 0:
        raise JobFailed(
            f"{name} failed (exit status {process.exitcode}); rerun to resume from its last "
            "checkpoint"
        )


def banner(text: str) -> None:
    """A line that marks the start of a step in a long run's output."""
    print(f"\n==== {text} " + "=" * max(0, 70 - len(text)), flush=True, file=sys.stdout)
