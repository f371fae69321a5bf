"""The router of one DAG node: per-sample weights of the node's outgoing edges."""

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

__all__ = ["Router", "logit"]


def logit(p: float) -> float:
    """Inverse of the sigmoid, for setting biases from edge probabilities in (0, 1)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"edge weight for a router bias must be in (0, 1), got {p}")
    return math.log(p / (1.0 - p))


class Router(nn.Module):
    """``sigmoid(FC(GAP(x)))``, optionally with one hidden layer (FC-ReLU-FC).

    Args:
        in_channels: channels ``C`` of the node output it reads.
        num_edges: ``k``, the number of later nodes this node can feed.
        hidden_dim: 0 for a single FC layer, else the width of the hidden layer.
        init_weights: optional ``k`` initial edge weights in (0, 1); the last FC's biases are set
            to their logits (and its weights to small values) so that the router starts near
            them for every input (the FC's weights start at zero: all images start with the same
            wiring and diverge as the router learns).

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
        self.in_channels = in_channels
        self.num_edges = num_edges
        self.hidden_dim = hidden_dim
        if hidden_dim > 0:
            self.hidden = nn.Linear(in_channels, hidden_dim)
            self.fc = nn.Linear(hidden_dim, num_edges)
            nn.init.kaiming_uniform_(self.hidden.weight, a=math.sqrt(5))
            nn.init.zeros_(self.hidden.bias)
        else:
            self.hidden = None
            self.fc = nn.Linear(in_channels, num_edges)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)
        if init_weights is not None:
            if len(init_weights) != num_edges:
                raise ValueError(
                    f"Router: init_weights has {len(init_weights)} values for {num_edges} edges"
                )
            with torch.no_grad():
                self.fc.weight.zero_()
                self.fc.bias.copy_(torch.tensor([logit(p) for p in init_weights]))

    def forward(self, x: Tensor) -> Tensor:
        pooled = x.mean(dim=(2, 3)) if x.dim() == 4 else x.flatten(2).mean(dim=2)
        if self.hidden is not None:
            pooled = torch.relu(self.hidden(pooled))
        return torch.sigmoid(self.fc(pooled))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, num_edges={self.num_edges}, "
            f"hidden_dim={self.hidden_dim}"
        )
