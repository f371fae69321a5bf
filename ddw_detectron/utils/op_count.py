"""How many operators a call runs: ATen operators dispatched (eager) and, on CUDA, kernels
launched (eager or compiled), for the per-node cost of DDW over the static network."""

from typing import Callable, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["count_dispatched", "count_kernels"]


class _Counter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.count += 1
        return func(*args, **(kwargs or {}))


def count_dispatched(fn: Callable[[], object]) -> int:
    """ATen operators that ``fn()`` dispatches, views (which launch nothing) left out; forward
    and, when ``fn`` calls it, backward. Eager code only: a compiled region runs its own
    kernels outside the dispatcher."""
    with _Counter() as counter:
        fn()
    return counter.count


def count_kernels(fn: Callable[[], object], device: str) -> Optional[int]:
    """CUDA kernels that ``fn()`` launches (torch.profiler), eager or compiled; None off CUDA."""
    if not str(device).startswith("cuda"):
        return None
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
