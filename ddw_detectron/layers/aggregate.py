"""Weighted aggregation of node outputs, ``u = sum_i weights[:, i] * features[i]``.

``aggregate`` is the buffered version used in training: a custom autograd function that
allocates only its output in forward (in-place multiply-adds, no per-edge temporary of feature
size), keeps nothing but references to its inputs for backward, and there computes
``dL/dfeatures[i] = weights[:, i] * g`` and ``dL/dweights[:, i] = <g, features[i]>`` per sample.
On the CPU, an edge whose weight is zero for every sample (dropped) is left out of the sum and
of the feature gradients; only its weight gradient is computed.

Both directions run either as ATen operators (the ``"eager"`` kernel) or as the fused Triton
kernels of :mod:`.fused_aggregate` (``"triton"``); ``"auto"`` picks by device type
(:data:`AUTO_KERNELS`). Without autograd (``torch.no_grad()``, inference) the same kernel sums
without the autograd function. While tracing or compiling it runs as plain tensor ops
(:func:`weighted_sum`, which TorchScript also compiles), so exported graphs contain standard
operators only and the compiler fuses the sum itself.
"""

from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from .triton_support import interpreting, triton_available

__all__ = [
    "AUTO_KERNELS",
    "KERNELS",
    "aggregate",
    "interpreting",
    "resolve_kernel",
    "triton_available",
    "weighted_sum",
    "weighted_sum_of_columns",
    "sum_nonzero",
    "sum_with",
    "nonzero_columns",
    "nonzero_columns_on_cpu",
    "capturing_graph",
]


def capturing_graph() -> bool:
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
    """``[B]`` of ``<g[b], f[b]>`` for ``[B, N]`` inputs. ``method``: ``"batch_rows"`` (one
    product and one row sum over the whole batch, summed in at least fp32: accelerators, where
    the number of kernels must not grow with B), ``"rows"`` (row sums of the product, in batch
    chunks) or ``"dots"`` (one BLAS dot per sample)."""
    if method == "batch_rows":
        return torch.sum(g * f, dim=1, dtype=torch.promote_types(g.dtype, torch.float32))
    if method == "rows":
        rows = max(1, _ROW_CHUNK_NUMEL // max(1, g.shape[1]))
        chunks = [
            torch.linalg.vecdot(g[s : s + rows], f[s : s + rows])
            for s in range(0, g.shape[0], rows)
        ]
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)
    return torch.stack([torch.dot(g[b], f[b]) for b in range(g.shape[0])])


def _dot_method(flat: Tensor) -> str:
    """The :func:`_per_sample_dots` method for ``flat`` ``[B, N]`` on its device (docs/cost.md
    has the measurements that chose them; a batched GEMV, ``bmm`` with M = N = 1, took 8.4 ms
    where the row sum took 0.11 ms on an H200)."""
    if flat.device.type != "cpu":
        return "batch_rows"
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


# How the buffered aggregation runs: "eager" (ATen operators: multiply-adds forward, products and
# per-sample inner products backward) or "triton" (layers.fused_aggregate: one pass over a node's
# inputs each way; CUDA, or a CPU under TRITON_INTERPRET=1). "auto" takes AUTO_KERNELS by device
# type, each entry chosen by a measurement on that device (docs/cost.md).
KERNELS = ("auto", "eager", "triton")
AUTO_KERNELS = {"cpu": "eager", "cuda": "eager"}


def resolve_kernel(kernel: str, device: torch.device) -> str:
    """``"eager"`` or ``"triton"``: ``kernel`` (one of :data:`KERNELS`) on ``device``. Raises
    ValueError when ``"triton"`` cannot run there."""
    if kernel not in KERNELS:
        raise ValueError(f"aggregation kernel must be one of {KERNELS}, got {kernel!r}")
    if kernel == "auto":
        return AUTO_KERNELS.get(torch.device(device).type, "eager")
    if kernel == "triton":
        if not triton_available():
            raise ValueError("the 'triton' aggregation kernel needs the triton package")
        if torch.device(device).type != "cuda" and not interpreting():
            raise ValueError(
                f"the 'triton' aggregation kernel runs on CUDA (on {device}: only under "
                "TRITON_INTERPRET=1, Triton's interpreter)"
            )
    return kernel


def _fused_sum(features: List[Tensor], weights: Tensor) -> Tensor:
    from .fused_aggregate import fused_weighted_sum  # imports Triton: only when it is used

    return fused_weighted_sum(features, weights)


def _fused_backward(grad: Tensor, features: List[Tensor], weights: Tensor, needs):
    from .fused_aggregate import fused_backward

    return fused_backward(grad, features, weights, needs)


def sum_with(
    kernel: str, features: List[Tensor], weights: Tensor, kept: Optional[List[int]]
) -> Tensor:
    """The weighted sum by ``kernel``: :func:`sum_nonzero` (``"eager"``) or the fused one
    (``"triton"``, which skips every input of weight zero per sample by itself)."""
    if kernel == "triton":
        return _fused_sum(features, weights)
    return sum_nonzero(features, weights, kept)


def sum_nonzero(features: List[Tensor], weights: Tensor, kept: Optional[List[int]]) -> Tensor:
    """:func:`weighted_sum` over the columns ``kept`` (all when None): the columns left out are
    zero for every sample, so the value is the same (up to the sign of zeros)."""
    if kept is None or len(kept) == len(features):
        return weighted_sum(features, weights)
    if len(kept) == 0:
        return torch.zeros_like(features[0])
    selected = weights.index_select(1, torch.tensor(kept, device=weights.device))
    return weighted_sum([features[i] for i in kept], selected)


def _eager_backward(ctx, grad: Tensor, weights: Tensor, features: List[Tensor]):
    grad_weights = None
    if ctx.needs_input_grad[0]:
        grad_weights = _inner_products(grad, features)
    kept = range(len(features)) if ctx.kept is None else ctx.kept
    grad_features = [
        grad * _per_sample(weights, i, grad) if ctx.needs_input_grad[i + 3] and i in kept else None
        for i in range(len(features))
    ]
    return grad_weights, grad_features


class _BufferedAggregate(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, weights: Tensor, kept: Optional[List[int]], kernel: str, *features: Tensor
    ) -> Tensor:
        ctx.save_for_backward(weights, *features)
        ctx.weights_dtype = weights.dtype
        # An edge whose weight is zero for every sample (dropped by the gate) adds nothing to the
        # output and receives no gradient; only its weight's gradient (for the straight-through
        # estimator) is computed in backward.
        ctx.kept = kept
        ctx.kernel = kernel
        return sum_with(kernel, list(features), weights, kept)

    @staticmethod
    def backward(ctx, grad: Tensor):
        weights, *features = ctx.saved_tensors
        if ctx.kernel == "triton":
            needs = [ctx.needs_input_grad[i + 3] for i in range(len(features))]
            grad_weights, grad_features = _fused_backward(grad, features, weights, needs)
        else:
            grad_weights, grad_features = _eager_backward(ctx, grad, weights, features)
        if grad_weights is not None:
            grad_weights = grad_weights.to(ctx.weights_dtype)
        return (grad_weights, None, None, *grad_features)


def aggregate(
    features: Sequence[Tensor],
    weights: Tensor,
    kept: Union[List[int], None, str] = "auto",
    kernel: str = "auto",
) -> Tensor:
    """Buffered aggregation ``sum_i weights[:, i] * features[i]``.

    Args:
        features: sequence of ``k`` tensors ``[B, C, H, W]`` of one shape (contiguous,
            channels_last or strided views).
        weights: ``[B, k]`` per-sample edge weights.
        kept: the columns of ``weights`` that are nonzero for some sample, when the caller has
            read them already; ``None`` sums every column; ``"auto"`` reads them on the CPU
            (:func:`nonzero_columns_on_cpu`).
        kernel: one of :data:`KERNELS` (:func:`resolve_kernel`).
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
    if capturing_graph():
        return weighted_sum(features, weights)
    kernel = resolve_kernel(kernel, features[0].device)
    if not needs_grad:
        return sum_with(kernel, features, weights, None)
    if kept == "auto":
        kept = nonzero_columns_on_cpu(weights.detach())
    return _BufferedAggregate.apply(weights, kept, kernel, *features)
