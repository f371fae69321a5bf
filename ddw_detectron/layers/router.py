"""The routers of a DAG node: the weights of the node's outgoing edges.

A :class:`Router` (the method's) predicts them per sample from the node's output; a
:class:`SharedRouter` learns one weight per edge shared by every sample (a learned static DAG,
the control for instance-aware wiring; "static" alone names the base network). Both give
``[B, k]`` in (0, 1) and fix their output with :meth:`set_constant`.
"""

import math
import warnings
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

__all__ = ["ROUTER_MODES", "Router", "SharedRouter", "build_router", "logit", "resolve_router_mode"]

# "dynamic": per-sample weights from the node output; "shared": one learned weight per edge.
ROUTER_MODES = ("dynamic", "shared")
# Old names of router modes, accepted with a warning until version 0.3.
RENAMED_ROUTER_MODES = {"static": "shared"}
_warned = set()
# The logit a dropped edge is fixed at by ``set_constant``: sigmoid(-30) ~ 1e-13.
_DROPPED_LOGIT = -30.0


def logit(p: float) -> float:
    """Inverse of the sigmoid, for setting biases from edge probabilities in (0, 1)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"edge weight for a router bias must be in (0, 1), got {p}")
    return math.log(p / (1.0 - p))


def _check_init(init_weights: Optional[Sequence[float]], num_edges: int) -> None:
    if init_weights is not None and len(init_weights) != num_edges:
        raise ValueError(
            f"Router: init_weights has {len(init_weights)} values for {num_edges} edges"
        )


def _constant_logits(weights: Tensor, threshold: float) -> Tensor:
    """Logits that give ``weights`` ``[k]``; entries ``<= threshold`` become a dropped edge."""
    weights = weights.detach().float().cpu().clamp(0.0, 1.0 - 1e-6)
    return torch.where(
        weights > threshold,
        torch.logit(weights.clamp_min(1e-6)),
        torch.full_like(weights, _DROPPED_LOGIT),
    )


class Router(nn.Module):
    """``sigmoid(FC(GAP(x)))``, optionally with one hidden layer (FC-ReLU-FC).

    Args:
        in_channels: channels ``C`` of the node output it reads.
        num_edges: ``k``, the number of later nodes this node can feed.
        hidden_dim: 0 for a single FC layer, else the width of the hidden layer.
        init_weights: None for PyTorch's default ``nn.Linear`` initialisation (the method's
            plain random start: each image gets its own wiring from the first step), or ``k``
            initial edge weights in (0, 1): the last FC's biases become their logits and its
            weights zero, so the router starts at exactly them for every input (the start near
            the base network, for fine-tuning from static weights). Its weights still get a
            gradient (the pooled input times the logits' gradient) and move from the first
            step. (Small random weights instead moved the logits of a ResNet-50's 1,024-2,048
            unnormalised pooled channels by more than the margin to the threshold.)

    Shapes: input ``[B, C, H, W]``, output ``[B, k]`` in (0, 1).
    """

    def __init__(
        self,
        in_channels: int,
        num_edges: int,
        hidden_dim: int = 0,
        init_weights: Optional[Sequence[float]] = None,
    ):
        super().__init__()
        if num_edges < 1:
            raise ValueError(f"Router: num_edges must be >= 1, got {num_edges}")
        if hidden_dim < 0:
            raise ValueError(f"Router: hidden_dim must be >= 0, got {hidden_dim}")
        _check_init(init_weights, num_edges)
        self.in_channels = in_channels
        self.num_edges = num_edges
        self.hidden_dim = hidden_dim
        if hidden_dim > 0:
            self.hidden = nn.Linear(in_channels, hidden_dim)
            self.fc = nn.Linear(hidden_dim, num_edges)
        else:
            self.hidden = None
            self.fc = nn.Linear(in_channels, num_edges)
        if init_weights is not None:
            with torch.no_grad():
                self.fc.weight.zero_()
                self.fc.bias.copy_(torch.tensor([logit(p) for p in init_weights]))

    def forward(self, x: Tensor) -> Tensor:
        pooled = x.mean(dim=(2, 3)) if x.dim() == 4 else x.flatten(2).mean(dim=2)
        if self.hidden is not None:
            pooled = torch.relu(self.hidden(pooled))
        return torch.sigmoid(self.fc(pooled))

    @torch.no_grad()
    def set_constant(self, weights: Tensor, threshold: float) -> None:
        """Output ``weights`` ``[k]`` for every input from now on (entries ``<= threshold``
        dropped): the FC weights become 0 (and the hidden layer's), the biases the logits."""
        if self.hidden is not None:
            self.hidden.weight.zero_()
            self.hidden.bias.zero_()
        self.fc.weight.zero_()
        self.fc.bias.copy_(_constant_logits(weights, threshold).to(self.fc.bias))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, num_edges={self.num_edges}, "
            f"hidden_dim={self.hidden_dim}"
        )


class SharedRouter(nn.Module):
    """One learned logit per edge, the same for every input: ``sigmoid(logits)`` for each
    sample. Through the stage's gate, threshold and buffer it makes a learned static DAG.

    Args:
        num_edges: ``k``.
        init_weights: None for logits drawn from ``N(0, 1)`` (edge weights spread around 0.5),
            or ``k`` initial edge weights in (0, 1).

    Shapes: input ``[B, ...]`` (only its batch size is read), output ``[B, k]`` in (0, 1).
    """

    def __init__(self, num_edges: int, init_weights: Optional[Sequence[float]] = None):
        super().__init__()
        if num_edges < 1:
            raise ValueError(f"SharedRouter: num_edges must be >= 1, got {num_edges}")
        _check_init(init_weights, num_edges)
        self.num_edges = num_edges
        if init_weights is None:
            initial = torch.randn(num_edges)
        else:
            initial = torch.tensor([logit(p) for p in init_weights])
        self.logits = nn.Parameter(initial)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.logits).unsqueeze(0).expand(x.shape[0], self.num_edges)

    @torch.no_grad()
    def set_constant(self, weights: Tensor, threshold: float) -> None:
        """Output ``weights`` ``[k]`` (entries ``<= threshold`` dropped)."""
        self.logits.copy_(_constant_logits(weights, threshold).to(self.logits))

    def extra_repr(self) -> str:
        return f"num_edges={self.num_edges}"


def resolve_router_mode(mode: str) -> str:
    """``mode`` under its current name: an old name (:data:`RENAMED_ROUTER_MODES`) is
    translated, with one warning per process; any other value is returned as given."""
    if mode not in RENAMED_ROUTER_MODES:
        return mode
    new = RENAMED_ROUTER_MODES[mode]
    if mode not in _warned:
        _warned.add(mode)
        warnings.warn(
            f"router mode {mode!r} is renamed {new!r} (MODEL.DDW.ROUTER_MODE, router_mode); "
            "the old name goes in 0.3",
            FutureWarning,
            stacklevel=3,
        )
    return new


def __getattr__(name: str):
    if name == "StaticRouter":
        warnings.warn("StaticRouter is renamed SharedRouter", FutureWarning, stacklevel=2)
        return SharedRouter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_router(
    mode: str,
    in_channels: int,
    num_edges: int,
    hidden_dim: int = 0,
    init_weights: Optional[Sequence[float]] = None,
) -> nn.Module:
    """The router of ``mode`` (one of :data:`ROUTER_MODES`); ``hidden_dim`` applies to
    ``"dynamic"`` only."""
    mode = resolve_router_mode(mode)
    if mode == "dynamic":
        return Router(in_channels, num_edges, hidden_dim=hidden_dim, init_weights=init_weights)
    if mode == "shared":
        return SharedRouter(num_edges, init_weights=init_weights)
    raise ValueError(f"router mode must be one of {ROUTER_MODES}, got {mode!r}")
