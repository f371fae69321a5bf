"""A stage of blocks as a complete DAG with per-sample, router-predicted edge weights.

Node 0 takes the stage input. Node ``j >= 1`` aggregates ``u_j = sum_{i<j} A[b, i, j] * x_i``
and computes ``x_j = node_j(u_j)``; the router of node ``i < n-1`` writes row ``i`` of the
per-sample adjacency matrix ``A`` from ``x_i``. The stage output is ``x_{n-1}``.
"""

from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .aggregate import (
    aggregate,
    exporting,
    nonzero_columns,
    nonzero_columns_on_cpu,
    sum_nonzero,
    weighted_sum_of_columns,
)
from .router import ROUTER_MODES, build_router

__all__ = ["DAGStage", "GATES"]

GATES = ("ste", "soft")


class _ForwardMode(NamedTuple):
    skip: bool  # serve nodes without kept input from the cache (eager inference, batch 1)
    drop_edges: bool  # leave edges dropped for the whole batch out of the sum
    recompute: bool  # eager training, memory-efficient: recompute each node's input in backward


class _RecomputedInput:
    """Saved-tensor hooks that store a node's aggregated input ``u_j`` as a recipe.

    The node's first layer saves ``u_j`` for its backward. Kept, it would add one feature map per
    node to the activations held for backward; instead the hooks save the references that
    produced it (node outputs that are saved anyway, and the small weight column) and recompute
    ``u_j`` bit-identically when backward unpacks it.
    """

    def __init__(
        self, target: Tensor, features: List[Tensor], weights: Tensor, kept: Optional[List[int]]
    ):
        self.target = target
        self.signature = self._signature(target)
        self.features = features
        self.versions = [f._version for f in features]
        self.weights = weights.detach()
        self.kept = kept  # the columns of weights summed (all when None)

    @staticmethod
    def _signature(t: Tensor) -> Tuple:
        return (t.data_ptr(), t.dtype, t.device, tuple(t.shape), t.stride(), t.storage_offset())

    def pack(self, t: Tensor):
        if self.target is not None and self._signature(t) == self.signature:
            return self
        return t

    def unpack(self, saved):
        if saved is not self:
            return saved
        if [f._version for f in self.features] != self.versions:
            raise RuntimeError(
                "DAGStage: a node output was modified in place after it was aggregated; "
                "the aggregated input cannot be recomputed for backward"
            )
        with torch.no_grad():
            return sum_nonzero(self.features, self.weights, self.kept)

    def release_target(self) -> None:
        # Drop the forward's reference so that u_j is freed once its node has consumed it.
        self.target = None


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
            sample gets its own wiring) or ``"static"`` (one learned weight per edge shared by
            every sample: a learned static DAG, through the same gate, threshold and buffer).
        memory_efficient: buffered :func:`aggregate` with ``u_j`` recomputed in backward (True),
            or plain autograd sums (False). Both compute the same values.
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

    The defaults (threshold 0, no node skipping) make the stage the bare complete-DAG operator,
    whose every edge is computed: what its unit tests check against hand-written sums. The
    method's settings (``MODEL.DDW.*``, threshold 0.1) come from
    ``ddw_detectron.modeling.stage_config.STAGE_DEFAULTS`` through the backbone builders and
    ``dag_stage_factory``.

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
        threshold: float = 0.0,
        gate: str = "ste",
        router_hidden_dim: int = 0,
        memory_efficient: bool = True,
        skip_unused_nodes: bool = False,
        init_edge_weights: Optional[Tuple[float, float]] = None,
        router_mode: str = "dynamic",
    ):
        super().__init__()
        if isinstance(nodes, Mapping):
            names, nodes = list(nodes.keys()), list(nodes.values())
        else:
            nodes = list(nodes)
            names = [str(i) for i in range(len(nodes))]
        if len(nodes) < 1:
            raise ValueError("DAGStage: nodes must hold at least 1 module, got 0")
        if not all(isinstance(node, nn.Module) for node in nodes):
            raise ValueError("DAGStage: every entry of nodes must be an nn.Module")
        if not (isinstance(threshold, (int, float)) and 0.0 <= threshold < 1.0):
            raise ValueError(f"DAGStage: threshold must be in [0, 1), got {threshold!r}")
        if gate not in GATES:
            raise ValueError(f"DAGStage: gate must be one of {GATES}, got {gate!r}")
        if router_mode not in ROUTER_MODES:
            raise ValueError(
                f"DAGStage: router_mode must be one of {ROUTER_MODES}, got {router_mode!r}"
            )
        if out_channels < 1:
            raise ValueError(f"DAGStage: out_channels must be >= 1, got {out_channels}")
        if init_edge_weights is not None:
            chain, other = init_edge_weights
            if not 0.0 < other < 1.0 or not 0.0 < chain < 1.0:
                raise ValueError(
                    "DAGStage: init_edge_weights must be two weights in (0, 1), got "
                    f"{init_edge_weights}"
                )
        for name, node in zip(names, nodes):
            self.add_module(name, node)
        self._node_names = names
        self.num_nodes = len(nodes)
        self.out_channels = out_channels
        self.threshold = float(threshold)
        self.gate = gate
        self.memory_efficient = memory_efficient
        self.skip_unused_nodes = skip_unused_nodes
        self.router_mode = router_mode
        self.routers = nn.ModuleList(
            build_router(
                router_mode,
                out_channels,
                self.num_nodes - 1 - i,
                hidden_dim=router_hidden_dim,
                init_weights=None
                if init_edge_weights is None
                else [init_edge_weights[0]] + [init_edge_weights[1]] * (self.num_nodes - 2 - i),
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

    def node(self, i: int) -> nn.Module:
        return self._modules[self._node_names[i]]

    def nodes(self) -> List[nn.Module]:
        return [self._modules[name] for name in self._node_names]

    def __len__(self) -> int:
        return self.num_nodes

    def _gate(self, weights: Tensor) -> Tensor:
        if self.training and self.gate == "soft":
            return weights
        kept = weights * (weights > self.threshold)
        if self.training and torch.is_grad_enabled():
            # Straight-through: forward uses the thresholded weights, backward the identity.
            return weights + (kept - weights).detach()
        return kept

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
        # incoming[j]: (i, A[:, i, j]) for the edges i -> j that are computed.
        incoming: List[List[Tuple[int, Tensor]]] = [[] for _ in range(n)]
        rows: List[Tensor] = []
        raw_rows: List[Tensor] = []
        self.skipped_nodes = []
        for j in range(n):
            if j == 0:
                out = self.node(0)(x)
            else:
                out = self._node_output(j, outputs, incoming[j], mode)
                if out.shape != outputs[0].shape:
                    raise ValueError(
                        f"DAGStage: nodes must all produce one output shape; node {j} gave "
                        f"{tuple(out.shape)}, node 0 gave {tuple(outputs[0].shape)}"
                    )
            outputs.append(out)
            if j < n - 1:
                rows.append(self._row(j, out, raw_rows))
                self._route(j, rows[-1], incoming, mode)
        self._record(rows, raw_rows, x.shape[0], n, outputs[-1])
        return outputs[-1]

    def _row(self, j: int, out: Tensor, raw_rows: List[Tensor]) -> Tensor:
        """Row ``j`` of the wiring, ``[B, n-1-j]``: the gated router output (the raw one is
        appended to ``raw_rows``), or the row of ``forced_adjacency`` when one is set."""
        if self.forced_adjacency is not None:
            return self.forced_adjacency[:, j, j + 1 :].to(out.dtype)
        raw_rows.append(self.routers[j](out))
        return self._gate(raw_rows[-1])

    def _check_forced(self, batch: int) -> None:
        forced, n = self.forced_adjacency, self.num_nodes
        if forced is not None and tuple(forced.shape) != (batch, n, n):
            raise ValueError(
                f"DAGStage {self.wiring_name or ''}: forced_adjacency must be [{batch}, {n}, {n}] "
                f"for this batch, got {tuple(forced.shape)}"
            )

    @staticmethod
    def _route(i: int, row: Tensor, incoming: List[List[Tuple[int, Tensor]]], mode) -> None:
        """Hand node ``i``'s edge weights ``row`` ``[B, n-1-i]`` to the later nodes: every edge,
        or (``mode.drop_edges``) those kept for some sample of the batch, read once per row."""
        columns = row.unbind(dim=1)  # views, whose backward is one stack per row
        offsets = nonzero_columns(row) if mode.drop_edges else range(len(columns))
        for offset in offsets:
            incoming[i + 1 + offset].append((i, columns[offset]))

    def _forward_mode(self, x: Tensor) -> "_ForwardMode":
        tracing = exporting()
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
        )

    def _node_output(self, j: int, outputs: List[Tensor], edges, mode) -> Tensor:
        """``x_j = node_j(sum_i A[:, i, j] * outputs[i])`` over ``edges``, ``[(i, A[:, i, j])]``:
        the one place that chooses how the node's input is aggregated."""
        node = self.node(j)
        if not edges:
            u = torch.zeros_like(outputs[0])
            if mode.skip:
                self.skipped_nodes.append(j)
                return self._zero_input_output(j, u)
            return node(u)
        features = [outputs[i] for i, _ in edges]
        if mode.recompute:
            weights = torch.stack([column for _, column in edges], dim=1)
            kept = nonzero_columns_on_cpu(weights.detach())
            u = aggregate(features, weights, kept)
            hooks = _RecomputedInput(u, list(features), weights, kept)
            with torch.autograd.graph.saved_tensors_hooks(hooks.pack, hooks.unpack):
                out = node(u)
            hooks.release_target()
            return out
        return node(weighted_sum_of_columns(features, [column for _, column in edges]))

    def _record(self, rows, raw_rows, batch: int, n: int, like: Tensor) -> None:
        adjacency = like.new_zeros((batch, n, n), dtype=torch.float32)
        if rows:
            upper = torch.triu_indices(n, n, offset=1, device=like.device)
            adjacency[:, upper[0], upper[1]] = torch.cat(rows, dim=1).detach().float()
        self.adjacency = adjacency
        if self.training and torch.is_grad_enabled() and raw_rows:
            self.edge_weight_l1 = torch.cat(raw_rows, dim=1).sum(dim=1).mean()
        else:
            self.edge_weight_l1 = None

    def extra_repr(self) -> str:
        return (
            f"num_nodes={self.num_nodes}, threshold={self.threshold}, gate={self.gate!r}, "
            f"router_mode={self.router_mode!r}, "
            f"memory_efficient={self.memory_efficient}, skip_unused_nodes={self.skip_unused_nodes}"
        )
