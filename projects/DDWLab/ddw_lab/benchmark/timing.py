"""Timing the compared models side by side: interleaved rounds, medians, per-round ratios, and
peak memory."""

import statistics
import time
from typing import Callable, Dict, List

import torch
from tqdm import tqdm

__all__ = ["Timings", "interleaved", "peak_bytes_of", "sync"]


def sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


class Timings:
    """Seconds per round of each function; ``median(name)`` and the paired ``ratio(a, b)``."""

    def __init__(self, times: Dict[str, List[float]]):
        self.times = times

    def median(self, name):
        return statistics.median(self.times[name])

    def ratio(self, name, reference):
        return statistics.median(a / b for a, b in zip(self.times[name], self.times[reference]))

    def spread(self, name, reference):
        """The lowest and highest per-round ratio: how far one round's ratio strays."""
        ratios = [a / b for a, b in zip(self.times[name], self.times[reference])]
        return [min(ratios), max(ratios)]


def interleaved(fns: Dict[str, Callable], repeats, warmup, device, label="") -> Timings:
    """Run the functions in turns, the order rotating each round, and time each call."""
    names = list(fns)
    times = {name: [] for name in names}
    rounds = range(warmup + repeats)
    for i in tqdm(rounds, desc=label, unit="round", leave=False, disable=not label):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            sync(device)
            start = time.perf_counter()
            fns[name]()
            sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return Timings(times)


def peak_bytes_of(fn: Callable, device) -> int:
    """Peak bytes allocated while ``fn`` runs: CUDA's peak statistic, on CPU the running sum of
    torch.profiler's memory events (each event's own allocation, in time order)."""
    if str(device).startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        sync(device)
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    current = peak = 0
    for event in events:
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak
