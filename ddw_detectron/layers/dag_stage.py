"""A stage of blocks as a complete DAG with per-sample, router-predicted edge weights.

Node 0 takes the stage input. Node ``j >= 1`` aggregates ``u_j = sum_{i<j} A[b, i, j] * x_i``
and computes ``x_j = node_j(u_j)``; the router of node ``i < n-1`` writes row ``i`` of the
per-sample adjacency matrix ``A`` from ``x_i``. The stage output is ``x_{n-1}``.
"""

from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .aggregate import aggregate, exporting, nonzero_columns, nonzero_columns_on_cpu, sum_nonzero
from .router import Router

__all__ = [
    "is_router_parameter",
    "DAGStage",
    "ScriptableDAGStage",
    "collect_wiring",
    "freeze_wiring",
    "make_scriptable",
    "sparsity_loss",
    "GATES",
]

GATES = ("ste", "soft")


class _RecomputedInput:
    """Saved-tensor hooks that store a node's aggregated input ``u_j`` as a recipe.

    The node's first layer saves ``u_j`` for its backward. Kept, it would add one feature map per
    node to the activations held for backward; instead the hooks save the references that
    produced it (node outputs that are saved anyway, and the small weight column) and recompute
    ``u_j`` bit-identically when backward unpacks it.
    """

    def __init__(self, target: Tensor, features: List[Tensor], weights: Tensor):
        self.target = target
        self.signature = self._signature(target)
        self.features = features
        self.versions = [f._version for f in features]
        self.weights = weights.detach()
        self.kept = nonzero_columns_on_cpu(self.weights)

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
        memory_efficient: buffered :func:`aggregate` with ``u_j`` recomputed in backward (True),
            or plain autograd sums (False). Both compute the same values.
        skip_unused_nodes: at inference with batch size 1, a node all of whose incoming edges are
            dropped receives an all-zero input; its output then does not depend on the image and
            is served from a per-node cache instead of being computed again. (Otherwise dropped
            edges are left out at inference on the CPU only; on other devices they are summed
            with weight 0, so that the forward never waits to read the wiring.)
        init_edge_weights: optional ``(chain, other)``: routers start with edge ``i -> i+1`` at
            weight ``chain`` and every other edge at ``other`` (for every input), e.g.
            ``(0.99, 0.05)`` with ``tau = 0.1`` makes a fresh stage compute almost its static
            chain, while the dropped edges can still come back through the ``ste`` gradient.

    The defaults (threshold 0, no node skipping, the routers' plain random initialisation) make
    the stage the bare complete-DAG operator, whose every edge is computed: what its unit tests
    check against hand-written sums. The method's settings (``MODEL.DDW.*``, threshold 0.1, the
    chain-first initialisation) come from ``ddw_detectron.config.STAGE_DEFAULTS`` through the
    backbone builders and ``dag_stage_factory``.

    After each forward, ``adjacency`` holds the detached ``[B, n, n]`` matrix (strictly upper
    triangular) of the weights actually used, and ``edge_weight_l1`` the mean over the batch of
    the sum of the router outputs (differentiable, for a sparsity loss; None outside training).
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
        self.routers = nn.ModuleList(
            Router(
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
        kept = weights * (weights > self.threshold).to(weights.dtype)
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
        state.update(adjacency=None, edge_weight_l1=None, skipped_nodes=[], _zero_input_cache={})
        return state

    def forward(self, x: Tensor) -> Tensor:
        """
        Args:
            x: the stage input, ``[B, C_in, H_in, W_in]``.
        Returns:
            the last node's output, ``[B, C, H, W]``.
        """
        n = self.num_nodes
        tracing = exporting()
        grad_graph = self.training and torch.is_grad_enabled()
        inference = not grad_graph and not tracing
        skip = inference and self.skip_unused_nodes and x.shape[0] == 1
        # Leaving dropped edges out needs the wiring on the host. On CPU that read is free; on an
        # accelerator it would stall the queue at every node, so there dropped edges are summed
        # with weight 0, except when batch-1 skipping has to know the wiring anyway.
        drop_edges = inference and (x.device.type == "cpu" or skip)
        recompute = grad_graph and self.memory_efficient

        outputs: List[Tensor] = []
        columns: List[List[Tensor]] = [[] for _ in range(n)]
        rows: List[Tensor] = []
        raw_rows: List[Tensor] = []
        self.skipped_nodes = []
        shape = None
        for j in range(n):
            node = self.node(j)
            if j == 0:
                out = node(x)
                shape = out.shape
            else:
                weights = torch.stack(columns[j], dim=1)
                features = outputs
                if drop_edges:
                    # Dropped edges (zero for every sample) are not computed.
                    index = nonzero_columns(weights)
                    if len(index) < j:
                        features = [outputs[i] for i in index]
                        weights = weights[:, index]
                if len(features) == 0:
                    u = torch.zeros_like(outputs[0])
                    if skip:
                        out = self._zero_input_output(j, u)
                        self.skipped_nodes.append(j)
                    else:
                        out = node(u)
                elif recompute:
                    u = aggregate(features, weights)
                    hooks = _RecomputedInput(u, list(features), weights)
                    with torch.autograd.graph.saved_tensors_hooks(hooks.pack, hooks.unpack):
                        out = node(u)
                    hooks.release_target()
                    del u
                elif self.memory_efficient or inference or tracing:
                    out = node(aggregate(features, weights))
                else:
                    out = node(
                        sum(
                            weights[:, i].reshape(-1, 1, 1, 1).to(f.dtype) * f
                            for i, f in enumerate(features)
                        )
                    )
                if out.shape != shape:
                    raise ValueError(
                        f"DAGStage: nodes must all produce one output shape; node {j} gave "
                        f"{tuple(out.shape)}, node 0 gave {tuple(shape)}"
                    )
            outputs.append(out)
            if j < n - 1:
                raw = self.routers[j](out)
                row = self._gate(raw)
                raw_rows.append(raw)
                rows.append(row)
                for offset, entry in enumerate(row.unbind(dim=1)):
                    columns[j + 1 + offset].append(entry)

        self._record(rows, raw_rows, x.shape[0], n, outputs[-1])
        return outputs[-1]

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
            f"memory_efficient={self.memory_efficient}, skip_unused_nodes={self.skip_unused_nodes}"
        )

    def scriptable(self) -> "ScriptableDAGStage":
        """The inference computation of this stage as a module ``torch.jit.script`` compiles,
        sharing its nodes and routers."""
        return ScriptableDAGStage(self)


class _NodeAndRouter(nn.Module):
    """One node and the router reading its output (None for the last node)."""

    def __init__(self, node: nn.Module, router: Optional[Router]):
        super().__init__()
        self.node = node
        self.router = router

    def forward(self, u: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        out = self.node(u)
        if self.router is None:
            return out, None
        return out, self.router(out)


class ScriptableDAGStage(nn.Module):
    """The inference forward of a :class:`DAGStage` in code that TorchScript scripting compiles.

    The scripted graph keeps the per-image control flow of eager inference: each image's wiring
    is computed, the threshold applied, and an edge dropped for every image of the batch is not
    computed (a node with no kept incoming edge gets an all-zero input). Outputs are
    bit-identical to the eager stage in eval mode. Without autograd it is for inference only;
    the nodes and routers are those of the stage it was made from (its state-dict keys are
    ``steps.<j>.node.*`` and ``steps.<j>.router.*``).

    Shapes: ``[B, C_in, H_in, W_in]`` to ``[B, C, H, W]``, as the stage.
    """

    def __init__(self, stage: DAGStage):
        super().__init__()
        routers: List[Optional[Router]] = list(stage.routers) + [None]
        self.steps = nn.ModuleList(
            _NodeAndRouter(node, router) for node, router in zip(stage.nodes(), routers)
        )
        self.num_nodes = stage.num_nodes
        self.threshold = stage.threshold

    def forward(self, x: Tensor) -> Tensor:
        outputs: List[Tensor] = []
        columns: List[List[Tensor]] = []
        for _ in range(self.num_nodes):
            columns.append([])
        for j, step in enumerate(self.steps):
            if j == 0:
                u = x
            else:
                weights = torch.stack(columns[j], dim=1)
                u = sum_nonzero(outputs, weights, nonzero_columns(weights))
            out, row = step(u)
            outputs.append(out)
            if row is not None:
                kept = row * (row > self.threshold).to(row.dtype)
                for offset, entry in enumerate(kept.unbind(dim=1)):
                    columns[j + 1 + offset].append(entry)
        return outputs[-1]


def make_scriptable(model: nn.Module) -> nn.Module:
    """Replace, in place, every :class:`DAGStage` in ``model`` by its
    :class:`ScriptableDAGStage`: as a registered child and wherever a module keeps it in a list
    or tuple attribute (e.g. Detectron2's ``ResNet.stages``). Returns ``model`` (or the
    replacement if ``model`` is itself a DAGStage). Use on a copy: the result is for inference."""
    if isinstance(model, DAGStage):
        return model.scriptable()
    replacements: Dict[int, ScriptableDAGStage] = {}

    def swap(value):
        if isinstance(value, DAGStage):
            if id(value) not in replacements:
                replacements[id(value)] = value.scriptable()
            return replacements[id(value)]
        if isinstance(value, list):
            return [swap(v) for v in value]
        if isinstance(value, tuple):
            return tuple(swap(v) for v in value)
        return value

    for module in list(model.modules()):
        for name, child in list(module._modules.items()):
            if isinstance(child, DAGStage):
                module._modules[name] = swap(child)
        for name, value in list(vars(module).items()):
            if isinstance(value, (list, tuple)):
                setattr(module, name, swap(value))
    return model


def is_router_parameter(name: str) -> bool:
    """Whether a parameter name of a model holding DAG stages belongs to a router (for
    optimizer groups and freezing by name)."""
    return ".routers." in f".{name}"


def collect_wiring(model: nn.Module) -> Dict[str, Tensor]:
    """``{stage name: Tensor[B, n, n]}`` from the last forward of every :class:`DAGStage`.

    The name is the one the backbone gave the stage (e.g. ``"res3"``) or else its module path.
    Stages that have not run a forward yet are left out.
    """
    wiring = {}
    for path, module in model.named_modules():
        if isinstance(module, DAGStage) and module.adjacency is not None:
            wiring[module.wiring_name or path] = module.adjacency
    return wiring


def sparsity_loss(model: nn.Module) -> Optional[Tensor]:
    """Sum over the :class:`DAGStage` s of ``model`` of their last training forward's L1 of edge
    weights (mean over the batch); None when no stage has one."""
    terms = [
        module.edge_weight_l1
        for module in model.modules()
        if isinstance(module, DAGStage) and module.edge_weight_l1 is not None
    ]
    return torch.stack(terms).sum() if terms else None


def freeze_wiring(stage: DAGStage, adjacency: Tensor) -> None:
    """Give ``stage`` one fixed wiring for every image: ``adjacency`` ``[n, n]`` (entries
    ``<= threshold`` are dropped). Each router's FC weights become 0 and its biases the logits of
    the fixed weights, so the stage, its checkpoint format and its exported graph stay as they
    are, and the wiring no longer depends on the input."""
    n = stage.num_nodes
    if tuple(adjacency.shape) != (n, n):
        raise ValueError(
            f"freeze_wiring: adjacency must be [{n}, {n}] for this stage, got "
            f"{tuple(adjacency.shape)}"
        )
    weights = adjacency.detach().float().cpu().clamp(0.0, 1.0 - 1e-6)
    with torch.no_grad():
        for i, router in enumerate(stage.routers):
            row = weights[i, i + 1 :]
            logits = torch.where(
                row > stage.threshold, torch.logit(row.clamp_min(1e-6)), torch.full_like(row, -30.0)
            )
            if router.hidden is not None:
                router.hidden.weight.zero_()
                router.hidden.bias.zero_()
            router.fc.weight.zero_()
            router.fc.bias.copy_(logits.to(router.fc.bias))
