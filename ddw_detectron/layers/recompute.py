"""Saved-tensor hooks that keep a node's aggregated input as a recipe instead of a tensor."""

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from .aggregate import sum_with

__all__ = ["RecomputedInput"]


class RecomputedInput:
    """Saved-tensor hooks that store a node's aggregated input ``u_j`` as a recipe.

    The node's first layer saves ``u_j`` for its backward. Kept, it would add one feature map per
    node to the activations held for backward; instead the hooks save the references that
    produced it (node outputs that are saved anyway, and the small weight matrix) and recompute
    ``u_j`` bit-identically, with the same kernel, when backward unpacks it.
    """

    def __init__(
        self,
        target: Tensor,
        features: List[Tensor],
        weights: Tensor,
        kept: Optional[List[int]],
        kernel: str,
    ):
        self.target = target
        self.signature = self._signature(target)
        self.features = features
        self.versions = [f._version for f in features]
        self.weights = weights.detach()
        self.kept = kept  # the columns of weights summed (all when None)
        self.kernel = kernel

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
            return sum_with(self.kernel, self.features, self.weights, self.kept)

    def release_target(self) -> None:
        # Drop the forward's reference so that u_j is freed once its node has consumed it.
        self.target = None
