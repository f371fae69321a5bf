"""Weighted aggregation of node outputs, ``u = sum_i weights[:, i] * features[i]``.

``aggregate`` is the buffered version used in training: a custom autograd function that
allocates only its output in forward (in-place multiply-adds, no per-edge temporary of feature
size), keeps nothing but references to its inputs for backward, and there computes
``dL/dfeatures[i] = weights[:, i] * g`` and ``dL/dweights[:, i] = <g, features[i]>`` per sample.
On the CPU, an edge whose weight is zero for every sample (dropped) is left out of the sum and
of the feature gradients; only its weight gradient is computed.

Without autograd (``torch.no_grad()``, inference) and while tracing it runs as the same plain
tensor ops (:func:`weighted_sum`, which TorchScript also compiles), so exported graphs contain
standard operators only.
"""

from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

__all__ = [
    "aggregate",
    "weighted_sum",
    "weighted_sum_of_columns",
    "sum_nonzero",
    "nonzero_columns",
    "nonzero_columns_on_cpu",
    "exporting",
]


def exporting() -> bool:
    """True under ``torch.jit.trace``, ``torch.export`` and ``torch.compile``: DDW code then
    runs plain tensor ops with no data-dependent branch (every edge computed, dropped ones with
    weight 0)."""
    compiler = getattr(torch, "compiler", None)
    compiling = bool(
        compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling()
    )
    return torch.jit.is_tracing() or compiling


def _check(features: Sequence[Tensor], weights: Tensor) -> None:
    if len(features) == 0:
        raise ValueError("aggregate: features must hold at least one tensor")
    if weights.dim() != 2 or weights.shape[1] != len(features):
        raise ValueError(
            f"aggregate: weights must be [B, k] with k = len(features) = {len(features)}, "
            f"got {tuple(weights.shape)}"
        )
    shape = features[0].shape
    for i, feature in enumerate(features):
        if feature.shape != shape:
            raise ValueError(
                f"aggregate: features[{i}] has shape {tuple(feature.shape)}, "
                f"features[0] has {tuple(shape)}; all must agree"
            )
    if shape[0] != weights.shape[0]:
        raise ValueError(
            f"aggregate: batch size of features ({shape[0]}) and weights ({weights.shape[0]}) "
            "differ"
        )


def _per_sample(weights: Tensor, i: int, like: Tensor) -> Tensor:
    """Column ``i`` of ``weights`` shaped to broadcast over ``like`` ([B, 1, 1, ...])."""
    return weights[:, i].to(like.dtype).reshape([-1] + [1] * (like.dim() - 1))


def weighted_sum(features: List[Tensor], weights: Tensor) -> Tensor:
    """``sum_i weights[:, i] * features[i]`` with in-place multiply-adds into one output.

    Args:
        features: ``k`` tensors ``[B, C, H, W]`` (any shape with batch first) of one shape.
        weights: ``[B, k]``.
    Returns:
        ``[B, C, H, W]`` in the memory format of ``features[0]``.
    """
    return weighted_sum_of_columns(features, weights.unbind(1))


def weighted_sum_of_columns(features: List[Tensor], columns: List[Tensor]) -> Tensor:
    """:func:`weighted_sum` with the weights given as ``k`` columns ``[B]``: one multiply and
    ``k - 1`` multiply-adds, the only kernels of the sum (the columns are views). Summed in the
    widest dtype of ``features`` (under autocast node outputs can differ in precision)."""
    dtype = features[0].dtype
    for feature in features[1:]:
        dtype = torch.promote_types(dtype, feature.dtype)
    shape = [-1] + [1] * (features[0].dim() - 1)
    out = features[0].to(dtype) * columns[0].to(dtype).reshape(shape)
    for i in range(1, len(features)):
        out.addcmul_(features[i].to(dtype), columns[i].to(dtype).reshape(shape))
    return out


def _flatten_like(t: Tensor, reference: Tensor) -> Tensor:
    """``[B, N]`` of ``t`` in the element order of ``reference``'s memory layout.

    A view when ``t`` is dense in that order (the usual case), else a copy.
    """
    if (
        reference.dim() == 4
        and not reference.is_contiguous()
        and reference.is_contiguous(memory_format=torch.channels_last)
    ):
        t = t.permute(0, 2, 3, 1)
    return t.reshape(t.shape[0], -1)


# On the CPU, per-sample inner products of up to this many elements per sample are taken as an
# elementwise product and a row sum (one operator for the batch, in chunks of at most
# _ROW_CHUNK_NUMEL elements: a temporary of 4 MB in fp32); longer ones as one BLAS dot per sample,
# with no temporary. The crossover comes from a scratch timing on this project's CPU.
_ROW_SUM_MAX_PER_SAMPLE = 2**15
_ROW_CHUNK_NUMEL = 2**20


def _per_sample_dots(g: Tensor, f: Tensor, method: str) -> Tensor:
    """``[B]`` of ``<g[b], f[b]>`` for ``[B, N]`` inputs. ``method``: ``"gemv"`` (one batched
    GEMV: accelerators, where the number of kernels must not grow with B), ``"rows"`` (row sums
    of the product, in batch chunks) or ``"dots"`` (one BLAS dot per sample)."""
    if method == "gemv":
        return torch.bmm(g.unsqueeze(1), f.unsqueeze(2)).reshape(g.shape[0])
    if method == "rows":
        rows = max(1, _ROW_CHUNK_NUMEL // max(1, g.shape[1]))
        chunks = [
            torch.linalg.vecdot(g[s : s + rows], f[s : s + rows])
            for s in range(0, g.shape[0], rows)
        ]
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)
    return torch.stack([torch.dot(g[b], f[b]) for b in range(g.shape[0])])


def _dot_method(flat: Tensor) -> str:
    """The :func:`_per_sample_dots` method for ``flat`` ``[B, N]`` on its device."""
    if flat.device.type != "cpu":
        return "gemv"
    return "rows" if flat.shape[1] <= _ROW_SUM_MAX_PER_SAMPLE else "dots"


def _inner_products(grad: Tensor, features: Sequence[Tensor]) -> Tensor:
    """``[B, k]`` of per-sample ``<grad, features[i]>``, accumulated in at least fp32."""
    acc_dtype = torch.promote_types(grad.dtype, torch.float32)
    flat_grads = {}
    columns: List[Tensor] = []
    for feature in features:
        layout = (
            feature.dim() == 4
            and not feature.is_contiguous()
            and feature.is_contiguous(memory_format=torch.channels_last)
        )
        if layout not in flat_grads:
            flat_grads[layout] = _flatten_like(grad, feature)
        g = flat_grads[layout]
        f = _flatten_like(feature, feature)
        if g.dtype != f.dtype or (
            g.dtype in (torch.float16, torch.bfloat16) and g.device.type == "cpu"
        ):
            g, f = g.to(acc_dtype), f.to(acc_dtype)
        columns.append(_per_sample_dots(g, f, _dot_method(g)).to(acc_dtype))
    return torch.stack(columns, dim=1)


def nonzero_columns(weights: Tensor) -> List[int]:
    """Indices of the columns of ``weights`` ``[B, k]`` that are nonzero for some sample (edges
    not dropped for the whole batch); reads the small weight matrix on the host."""
    active: List[bool] = (weights != 0).any(dim=0).tolist()
    kept: List[int] = []
    for i, on in enumerate(active):
        if on:
            kept.append(i)
    return kept


def nonzero_columns_on_cpu(weights: Tensor) -> Optional[List[int]]:
    """:func:`nonzero_columns` on the CPU, where the read is free; None on other devices, where
    every column is used so that nothing waits for a read back."""
    return nonzero_columns(weights) if weights.device.type == "cpu" else None


def sum_nonzero(features: List[Tensor], weights: Tensor, kept: Optional[List[int]]) -> Tensor:
    """:func:`weighted_sum` over the columns ``kept`` (all when None): the columns left out are
    zero for every sample, so the value is the same (up to the sign of zeros)."""
    if kept is None or len(kept) == len(features):
        return weighted_sum(features, weights)
    if len(kept) == 0:
        return torch.zeros_like(features[0])
    selected = weights.index_select(1, torch.tensor(kept, device=weights.device))
    return weighted_sum([features[i] for i in kept], selected)


class _BufferedAggregate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weights: Tensor, kept: Optional[List[int]], *features: Tensor) -> Tensor:
        ctx.save_for_backward(weights, *features)
        ctx.weights_dtype = weights.dtype
        # An edge whose weight is zero for every sample (dropped by the gate) adds nothing to the
        # output and receives no gradient; only its weight's gradient (for the straight-through
        # estimator) is computed in backward.
        ctx.kept = kept
        return sum_nonzero(list(features), weights, kept)

    @staticmethod
    def backward(ctx, grad: Tensor):
        weights, *features = ctx.saved_tensors
        grad_weights = None
        if ctx.needs_input_grad[0]:
            grad_weights = _inner_products(grad, features).to(ctx.weights_dtype)
        kept = range(len(features)) if ctx.kept is None else ctx.kept
        grad_features = [
            grad * _per_sample(weights, i, grad)
            if ctx.needs_input_grad[i + 2] and i in kept
            else None
            for i in range(len(features))
        ]
        return (grad_weights, None, *grad_features)


def aggregate(
    features: Sequence[Tensor], weights: Tensor, kept: Union[List[int], None, str] = "auto"
) -> Tensor:
    """Buffered aggregation ``sum_i weights[:, i] * features[i]``.

    Args:
        features: sequence of ``k`` tensors ``[B, C, H, W]`` of one shape (contiguous,
            channels_last or strided views).
        weights: ``[B, k]`` per-sample edge weights.
        kept: the columns of ``weights`` that are nonzero for some sample, when the caller has
            read them already; ``None`` sums every column; ``"auto"`` reads them on the CPU
            (:func:`nonzero_columns_on_cpu`).
    Returns:
        ``[B, C, H, W]``; differentiable w.r.t. both arguments.
    """
    features = list(features)
    _check(features, weights)
    needs_grad = torch.is_grad_enabled() and (
        weights.requires_grad or any(f.requires_grad for f in features)
    )
    # Under autocast node outputs can differ in precision; sum in the widest one.
    dtype = features[0].dtype
    for feature in features[1:]:
        dtype = torch.promote_types(dtype, feature.dtype)
    features = [f.to(dtype) for f in features]
    if not needs_grad or exporting():
        return weighted_sum(features, weights)
    if kept == "auto":
        kept = nonzero_columns_on_cpu(weights.detach())
    return _BufferedAggregate.apply(weights, kept, *features)
