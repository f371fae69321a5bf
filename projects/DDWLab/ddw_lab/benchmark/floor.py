"""The floor of DDW's cost: the bytes its aggregation and routers must move, over this machine's
measured memory bandwidth, as a share of the static network's step.

Per DAG stage and forward, with ``M`` the bytes of one node output and ``k_j`` the edges into
node ``j`` that are kept for some image of the batch:

- the aggregation of node ``j >= 1`` reads each kept input once and writes its input once:
  ``(k_j + 1) M``;
- each router reads its node's output once: ``M`` per node but the last.

A training step adds the backward of both: node ``j``'s input gradient is read once, each kept
edge reads its source for the weight's gradient and accumulates the source's gradient (a read and
a write): ``(1 + 3 k_j) M``; the memory-efficient buffer recomputes the input, ``(k_j + 1) M``
again; each router writes its pooled gradient into its node's: ``M``. Everything else DDW does
(the routers' tiny linear layers, the gate) moves a negligible number of bytes.

``floor = 1 + (bytes / bandwidth) / static step time``: a DDW / static ratio reads as "x of
what the method must cost" when set beside it.
"""

from typing import Dict

import torch

from ddw_detectron.layers import DAGStage

__all__ = ["bandwidth", "floor_ratio", "wiring_bytes"]


def bandwidth(device: str = "cpu", megabytes: int = 256, repeats: int = 5) -> float:
    """Bytes per second of a large tensor copy (one read and one write per byte copied), the
    best of ``repeats``."""
    import time

    numel = megabytes * 2**20 // 4
    source = torch.rand(numel, device=device)
    target = torch.empty_like(source)
    best = float("inf")
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        target.copy_(source)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * source.numel() * source.element_size() / best


def _stage_bytes(stage: DAGStage, map_bytes: int, training: bool) -> int:
    adjacency = stage.adjacency  # [B, n, n] of the last forward
    kept = (adjacency != 0).any(dim=0).sum(dim=0).tolist()  # kept edges into each node
    total = 0
    for j in range(1, stage.num_nodes):
        k = int(kept[j])
        total += (k + 1) * map_bytes
        if training:
            total += (1 + 3 * k) * map_bytes + (k + 1) * map_bytes
    routers = (stage.num_nodes - 1) * map_bytes
    return total + (2 * routers if training else routers)


def wiring_bytes(model: torch.nn.Module, run, training: bool) -> int:
    """The floor's bytes of one ``run()`` of ``model`` (a forward, or a training step with
    ``training``), from the wiring and node-output sizes that run had."""
    sizes: Dict[int, int] = {}

    def record(stage, args, output):
        sizes[id(stage)] = output.numel() * output.element_size()

    stages = [m for m in model.modules() if isinstance(m, DAGStage)]
    handles = [stage.register_forward_hook(record) for stage in stages]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return sum(_stage_bytes(s, sizes[id(s)], training) for s in stages if id(s) in sizes)


def floor_ratio(bytes_moved: int, bytes_per_second: float, static_seconds: float) -> float:
    """``1 + (bytes_moved / bytes_per_second) / static_seconds``."""
    return 1.0 + bytes_moved / bytes_per_second / static_seconds
