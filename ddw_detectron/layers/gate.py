"""The threshold gate of a node's incoming edges (scriptable: the eager and scripted stages
share it)."""

from typing import List

import torch
from torch import Tensor

__all__ = ["GATES", "drop_edges", "gate_weights", "incoming_column"]

# "ste": training thresholds with a straight-through gradient; "soft": no threshold in training.
GATES = ("ste", "soft")


def gate_weights(weights: Tensor, threshold: float, keep_strongest: bool) -> Tensor:
    """The weights a node uses of its incoming edges ``weights`` ``[B, k]``: an edge whose weight
    is ``<= threshold`` is dropped (0). With ``keep_strongest``, a sample whose every edge would be
    dropped keeps its strongest one (all of them on a tie) at its own weight, so that the node
    never loses its input and the stage never loses its last path (docs/method.md).

    Returns ``[B, k]``, not differentiable through the mask (the caller adds the
    straight-through gradient)."""
    return drop_edges(weights, weights <= threshold, keep_strongest)


def drop_edges(weights: Tensor, dropped: Tensor, keep_strongest: bool) -> Tensor:
    """``weights`` ``[B, k]`` with the edges where ``dropped`` (bool ``[B, k]``) set to 0, as
    :func:`gate_weights` does for the mask ``weights <= threshold``."""
    if keep_strongest and weights.shape[1] > 0:
        strongest = weights == weights.max(dim=1, keepdim=True).values
        dropped = dropped & ~(strongest & dropped.all(dim=1, keepdim=True))
    return weights.masked_fill(dropped, 0.0)


def incoming_column(rows: List[List[Tensor]], j: int) -> Tensor:
    """Node ``j``'s incoming edge weights ``[B, j]`` from the routers' outputs as columns:
    ``rows[i]`` holds router ``i``'s ``[B]`` weights of its edges ``i -> i+1, i+2, ...``."""
    entries: List[Tensor] = []
    for i in range(j):
        entries.append(rows[i][j - 1 - i])
    return torch.stack(entries, dim=1)
