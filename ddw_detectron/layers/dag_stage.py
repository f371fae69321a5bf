"""A stage of blocks as a complete DAG with per-sample, router-predicted edge weights.

Node 0 takes the stage input. Node ``j >= 1`` aggregates ``u_j = sum_{i<j} A[b, i, j] * x_i``
and computes ``x_j = node_j(u_j)``; the router of node ``i < n-1`` writes row ``i`` of the
per-sample adjacency matrix ``A`` from ``x_i``. The stage output is ``x_{n-1}``.
"""

from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .aggregate import (
    KERNELS,
    aggregate,
    capturing_graph,
    nonzero_columns,
    nonzero_columns_on_cpu,
    resolve_kernel,
    sum_with,
    weighted_sum_of_columns,
)
from .gate import GATES, drop_edges, incoming_column
from .recompute import RecomputedInput
from .router import ROUTER_MODES, build_router, resolve_router_mode

__all__ = ["STAGE_DEFAULTS", "DAGStage"]

# The method's stage settings, written once: the defaults of DAGStage, of ``MODEL.DDW.*`` and of
# ``dag_stage_factory`` (the LazyConfig path).
STAGE_DEFAULTS = {
    "threshold": 0.1,
    "gate": "ste",
    "router_hidden_dim": 0,
    "memory_efficient": True,
    "skip_unused_nodes": True,
    "init_edge_weights": None,
    "router_mode": "dynamic",
    "aggregation_kernel": "auto",
    "keep_strongest_input": False,
}


class _ForwardMode(NamedTuple):
    skip: bool  # serve nodes without kept input from the cache (eager inference, batch 1)
    drop_edges: bool  # leave edges dropped for the whole batch out of the sum
    recompute: bool  # eager training, memory-efficient: recompute each node's input in backward
    kernel: str  # the aggregation's kernel, "eager" or "triton" (aggregate.resolve_kernel)


def _named_nodes(nodes) -> Tuple[List[str], List[nn.Module]]:
    if isinstance(nodes, Mapping):
        names, nodes = list(nodes.keys()), list(nodes.values())
    else:
        nodes = list(nodes)
        names = [str(i) for i in range(len(nodes))]
    if len(nodes) < 1:
        raise ValueError("DAGStage: nodes must hold at least 1 module, got 0")
    if not all(isinstance(node, nn.Module) for node in nodes):
        raise ValueError("DAGStage: every entry of nodes must be an nn.Module")
    return names, nodes


def _check_arguments(threshold, gate, router_mode, aggregation_kernel, out_channels) -> None:
    if not (isinstance(threshold, (int, float)) and 0.0 <= threshold < 1.0):
        raise ValueError(f"DAGStage: threshold must be in [0, 1), got {threshold!r}")
    for name, value, allowed in (
        ("gate", gate, GATES),
        ("router_mode", router_mode, ROUTER_MODES),
        ("aggregation_kernel", aggregation_kernel, KERNELS),
    ):
        if value not in allowed:
            raise ValueError(f"DAGStage: {name} must be one of {allowed}, got {value!r}")
    if out_channels < 1:
        raise ValueError(f"DAGStage: out_channels must be >= 1, got {out_channels}")


def _initial_row(init_edge_weights: Optional[Tuple[float, float]], k: int):
    """Initial weights of a router with ``k`` edges: None, or the chain edge then the others."""
    if init_edge_weights is None:
        return None
    chain, other = init_edge_weights
    if not 0.0 < other < 1.0 or not 0.0 < chain < 1.0:
        raise ValueError(
            f"DAGStage: init_edge_weights must be two weights in (0, 1), got {init_edge_weights}"
        )
    return [chain] + [other] * (k - 1)


class DAGStage(nn.Module):
    """A complete DAG over ``nodes`` with one router per node but the last.

    The nodes are registered as children ``"0"``, ``"1"``, ... exactly as in an
    ``nn.Sequential`` (or under the names of a mapping), so a static stage's checkpoint keys load
    unchanged; routers live under ``routers.<i>``.

    Args:
        nodes: ``n >= 1`` modules, a sequence or an ordered mapping of names to modules.
            Node 0 maps the stage input to ``[B, C, H, W]``; nodes ``1..n-1`` map
            ``[B, C, H, W]`` to ``[B, C, H, W]`` (one shape for every output).
        out_channels: ``C``, the channels of every node output (the routers' input).
        threshold: ``tau`` in [0, 1); an edge whose weight is ``<= tau`` is dropped.
        gate: ``"ste"`` (training forward uses ``A * [A > tau]``, backward treats the mask as 1)
            or ``"soft"`` (no threshold in training). At inference the threshold always applies.
        router_hidden_dim: 0 for single-FC routers, else the hidden width.
        router_mode: ``"dynamic"`` (the method: each router reads its node's output, so every
            sample gets its own wiring) or ``"shared"`` (one learned weight per edge shared by
            every sample: a learned static DAG, through the same gate, threshold and buffer;
            the old name ``"static"`` is accepted with a warning).
        memory_efficient: buffered :func:`aggregate` with ``u_j`` recomputed in backward (True),
            or plain autograd sums (False). Both compute the same values.
        aggregation_kernel: how the buffered aggregation and inference sums run, one of
            :data:`~ddw_detectron.layers.aggregate.KERNELS` (``"auto"``: by device type).
        keep_strongest_input: a sample for which every incoming edge of a node is dropped keeps
            that node's strongest edge (:func:`~ddw_detectron.layers.gate.gate_weights`), so
            the stage never loses its last path (a deviation from the paper: docs/method.md).
        skip_unused_nodes: at inference with batch size 1, a node all of whose incoming edges are
            dropped receives an all-zero input; its output then does not depend on the image and
            is served from a per-node cache instead of being computed again. (Otherwise dropped
            edges are left out at inference on the CPU only; on other devices they are summed
            with weight 0, so that the forward never waits to read the wiring.)
        init_edge_weights: None for the routers' plain random initialisation (the method's, for
            training from scratch), or ``(chain, other)``: routers start with edge ``i -> i+1``
            near weight ``chain`` and every other edge near ``other`` for every input, e.g.
            ``(0.99, 0.05)`` with ``tau = 0.1`` makes a fresh stage compute almost its static
            chain (for fine-tuning from static weights), while the dropped edges can still come
            back through the ``ste`` gradient.

    The defaults are the method's (:data:`STAGE_DEFAULTS`, also those of ``MODEL.DDW.*``);
    ``threshold=0.0, skip_unused_nodes=False`` make the stage the bare complete-DAG operator,
    whose every edge is computed.

    After each forward, ``adjacency`` holds the detached ``[B, n, n]`` matrix (strictly upper
    triangular) of the weights actually used (``forced_adjacency`` replaces the routers' when
    set, see :func:`~ddw_detectron.layers.use_wiring`), and ``edge_weight_l1`` the mean over
    the batch of the sum of the router outputs (differentiable, for a sparsity loss; None
    outside training).
    """

    def __init__(
        self,
        nodes: Union[Sequence[nn.Module], Mapping[str, nn.Module]],
        out_channels: int,
        threshold: float = STAGE_DEFAULTS["threshold"],
        gate: str = STAGE_DEFAULTS["gate"],
        router_hidden_dim: int = STAGE_DEFAULTS["router_hidden_dim"],
        memory_efficient: bool = STAGE_DEFAULTS["memory_efficient"],
        skip_unused_nodes: bool = STAGE_DEFAULTS["skip_unused_nodes"],
        init_edge_weights: Optional[Tuple[float, float]] = STAGE_DEFAULTS["init_edge_weights"],
        router_mode: str = STAGE_DEFAULTS["router_mode"],
        aggregation_kernel: str = STAGE_DEFAULTS["aggregation_kernel"],
        keep_strongest_input: bool = STAGE_DEFAULTS["keep_strongest_input"],
    ):
        super().__init__()
        names, nodes = _named_nodes(nodes)
        router_mode = resolve_router_mode(router_mode)
        _check_arguments(threshold, gate, router_mode, aggregation_kernel, out_channels)
        for name, node in zip(names, nodes):
            self.add_module(name, node)
        self._node_names = names
        self.num_nodes = len(nodes)
        self.out_channels = out_channels
        self.threshold = float(threshold)
        # While warming up (set_threshold_warmup), training thresholds at training_threshold: a
        # buffer changed in place, a graph input to a compiled stage rather than a constant.
        self.threshold_warming_up = False
        self.register_buffer("training_threshold", torch.tensor(self.threshold), persistent=False)
        self.gate = gate
        self.memory_efficient = memory_efficient
        self.skip_unused_nodes = skip_unused_nodes
        self.router_mode = router_mode
        self.aggregation_kernel = aggregation_kernel
        self.keep_strongest_input = keep_strongest_input
        self.routers = nn.ModuleList(
            build_router(
                router_mode,
                out_channels,
                self.num_nodes - 1 - i,
                hidden_dim=router_hidden_dim,
                init_weights=_initial_row(init_edge_weights, self.num_nodes - 1 - i),
            )
            for i in range(self.num_nodes - 1)
        )
        self.wiring_name: Optional[str] = None
        # When set ([B, n, n]), the wiring used instead of the routers' (ddw_detectron.layers.
        # use_wiring): the weights as used, not thresholded again.
        self.forced_adjacency: Optional[Tensor] = None
        self.adjacency: Optional[Tensor] = None
        self.edge_weight_l1: Optional[Tensor] = None
        self.skipped_nodes: List[int] = []
        self._zero_input_cache: Dict[int, Tuple[Tuple, Tensor]] = {}
        self._edge_index_cache: Optional[Tuple[Tensor, Tensor]] = None

    def node(self, i: int) -> nn.Module:
        return self._modules[self._node_names[i]]

    def nodes(self) -> List[nn.Module]:
        return [self._modules[name] for name in self._node_names]

    def __len__(self) -> int:
        return self.num_nodes

    def _gate(self, weights: Tensor) -> Tensor:
        """The weights ``[B, k]`` of one node's incoming edges as the node uses them."""
        if self.training and self.gate == "soft":
            return weights
        if self.training and self.threshold_warming_up:
            dropped = weights <= self.training_threshold
        else:
            dropped = weights <= self.threshold
        gated = drop_edges(weights, dropped, self.keep_strongest_input)
        if self.training and torch.is_grad_enabled():
            # Straight-through: forward uses the thresholded weights, backward the identity.
            return weights + (gated - weights).detach()
        return gated

    def _node_fingerprint(self, node: nn.Module, u: Tensor) -> Tuple:
        tensors = list(node.parameters()) + list(node.buffers())
        return (u.shape, u.dtype, u.device, tuple((id(t), t._version) for t in tensors))

    def _zero_input_output(self, j: int, u: Tensor) -> Tensor:
        node = self.node(j)
        key = self._node_fingerprint(node, u)
        cached = self._zero_input_cache.get(j)
        if cached is None or cached[0] != key:
            cached = (key, node(torch.zeros_like(u)))
            self._zero_input_cache[j] = cached
        return cached[1]

    def train(self, mode: bool = True):
        if mode:  # the cache serves inference only; eval() keeps it (weights are fingerprinted)
            self._zero_input_cache.clear()
        return super().train(mode)

    def __getstate__(self):
        # What the last forward left behind is output, not state, and edge_weight_l1 may still
        # hold an autograd graph, which neither deepcopy nor pickle accepts.
        state = self.__dict__.copy()
        state.update(
            adjacency=None,
            edge_weight_l1=None,
            forced_adjacency=None,
            skipped_nodes=[],
            _zero_input_cache={},
        )
        return state

    def forward(self, x: Tensor) -> Tensor:
        """
        Args:
            x: the stage input, ``[B, C_in, H_in, W_in]``.
        Returns:
            the last node's output, ``[B, C, H, W]``.
        """
        n, mode = self.num_nodes, self._forward_mode(x)
        self._check_forced(x.shape[0])
        outputs: List[Tensor] = []
        raw_rows: List[Tensor] = []  # router outputs, [B, n-1-i]
        row_entries: List[List[Tensor]] = []  # the same, as columns (views)
        used: List[Tensor] = []  # node j's incoming weights as used, [B, j]
        self.skipped_nodes = []
        for j in range(n):
            if j == 0:
                out = self.node(0)(x)
            else:
                used.append(self._incoming(j, row_entries))
                out = self._node_output(j, outputs, used[-1], mode)
                if out.shape != outputs[0].shape:
                    raise ValueError(
                        f"DAGStage: nodes must all produce one output shape; node {j} gave "
                        f"{tuple(out.shape)}, node 0 gave {tuple(outputs[0].shape)}"
                    )
            outputs.append(out)
            if j < n - 1 and self.forced_adjacency is None:
                raw_rows.append(self.routers[j](out))
                row_entries.append(raw_rows[-1].unbind(dim=1))
        self._record(used, raw_rows, x.shape[0], n, outputs[-1])
        return outputs[-1]

    def _incoming(self, j: int, row_entries: List[List[Tensor]]) -> Tensor:
        """Node ``j``'s incoming edge weights as used, ``[B, j]``: the routers' through the gate,
        or column ``j`` of ``forced_adjacency`` when one is set (used as it is)."""
        if self.forced_adjacency is not None:
            return self.forced_adjacency[:, :j, j]
        return self._gate(incoming_column(row_entries, j))

    def _check_forced(self, batch: int) -> None:
        forced, n = self.forced_adjacency, self.num_nodes
        if forced is not None and tuple(forced.shape) != (batch, n, n):
            raise ValueError(
                f"DAGStage {self.wiring_name or ''}: forced_adjacency must be [{batch}, {n}, {n}] "
                f"for this batch, got {tuple(forced.shape)}"
            )

    def _forward_mode(self, x: Tensor) -> "_ForwardMode":
        tracing = capturing_graph()
        grad_graph = self.training and torch.is_grad_enabled()
        inference = not grad_graph and not tracing
        skip = inference and self.skip_unused_nodes and x.shape[0] == 1
        return _ForwardMode(
            skip=skip,
            # Leaving dropped edges out needs the wiring on the host. On CPU that read is free;
            # on an accelerator it would stall the queue at every node, so there dropped edges
            # are summed with weight 0, except when batch-1 skipping has to know the wiring.
            drop_edges=inference and (x.device.type == "cpu" or skip),
            # Under a compiler the saved-tensor hooks and host reads are left out: its
            # partitioner decides what backward recomputes.
            recompute=grad_graph and self.memory_efficient and not tracing,
            kernel="eager" if tracing else resolve_kernel(self.aggregation_kernel, x.device),
        )

    def _node_output(self, j: int, outputs: List[Tensor], weights: Tensor, mode) -> Tensor:
        """``x_j = node_j(sum_i weights[:, i] * outputs[i])`` over the incoming edges ``i < j``
        (``weights`` ``[B, j]``): the one place that chooses how the node's input is
        aggregated."""
        node = self.node(j)
        sources = nonzero_columns(weights) if mode.drop_edges else list(range(j))
        if not sources:
            u = torch.zeros_like(outputs[0])
            if mode.skip:
                self.skipped_nodes.append(j)
                return self._zero_input_output(j, u)
            return node(u)
        features = [outputs[i] for i in sources]
        if len(sources) < j:
            weights = weights[:, sources]
        if mode.recompute:
            kept = nonzero_columns_on_cpu(weights.detach())
            u = aggregate(features, weights, kept, mode.kernel)
            hooks = RecomputedInput(u, list(features), weights, kept, mode.kernel)
            with torch.autograd.graph.saved_tensors_hooks(hooks.pack, hooks.unpack):
                out = node(u)
            hooks.release_target()
            return out
        if mode.kernel == "triton" and not torch.is_grad_enabled():
            return node(sum_with("triton", features, weights, None))
        return node(weighted_sum_of_columns(features, weights.unbind(dim=1)))

    def _edge_index(self, device: torch.device) -> Tuple[Tensor, Tensor]:
        """The (source, target) indices of the edges in the order ``used`` holds them, target by
        target (into node 1, then node 2, ...): made on the device, once per device in eager
        mode (a compiled graph makes them itself: a cached attribute would recompile it)."""
        cached = self._edge_index_cache
        if cached is not None and cached[0].device == device and not capturing_graph():
            return cached
        lower = torch.tril_indices(self.num_nodes, self.num_nodes, offset=-1, device=device)
        if not capturing_graph():
            self._edge_index_cache = (lower[1], lower[0])
        return lower[1], lower[0]

    def _record(self, used: List[Tensor], raw_rows: List[Tensor], batch: int, n: int, like):
        adjacency = like.new_zeros((batch, n, n), dtype=torch.float32)
        if used:
            sources, targets = self._edge_index(like.device)
            adjacency[:, sources, targets] = torch.cat(used, dim=1).detach().float()
        self.adjacency = adjacency
        if self.training and torch.is_grad_enabled() and raw_rows:
            self.edge_weight_l1 = torch.cat(raw_rows, dim=1).sum(dim=1).mean()
        else:
            self.edge_weight_l1 = None

    def extra_repr(self) -> str:
        return (
            f"num_nodes={self.num_nodes}, threshold={self.threshold}, gate={self.gate!r}, "
            f"router_mode={self.router_mode!r}, memory_efficient={self.memory_efficient}, "
            f"skip_unused_nodes={self.skip_unused_nodes}, "
            f"aggregation_kernel={self.aggregation_kernel!r}, "
            f"keep_strongest_input={self.keep_strongest_input}"
        )
