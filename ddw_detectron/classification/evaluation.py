"""Classification figures: top-k hits and the summed loss of a batch."""

from typing import List, Sequence

import torch
from torch import nn

__all__ = ["classification_counts", "topk_correct"]


def topk_correct(
    logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)
) -> List[int]:
    """Number of samples whose target is among the ``k`` highest logits, for each ``k``
    (``k`` capped at the number of classes)."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top == targets[:, None]
    return [int(hits[:, : min(k, logits.shape[1])].any(dim=1).sum()) for k in ks]


def classification_counts(logits: torch.Tensor, targets: torch.Tensor) -> List[float]:
    """``[top-1 hits, top-5 hits, summed cross-entropy, samples]`` of a batch (float64)."""
    logits = logits.double()
    top1, top5 = topk_correct(logits, targets)
    loss = nn.functional.cross_entropy(logits, targets, reduction="sum")
    return [float(top1), float(top5), float(loss), float(len(targets))]
