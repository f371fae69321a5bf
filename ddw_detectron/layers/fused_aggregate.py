"""The aggregation as fused Triton kernels: one pass over a node's inputs in each direction.

Forward: ``u[b] = sum_i w[b, i] * f_i[b]``, each input read once (not at all where its weight
is 0 for that sample) and ``u`` written once. Backward, in one pass over ``g = dL/du``: the
per-sample weight gradients ``<g[b], f_i[b]>`` and the input gradients ``w[b, i] * g[b]``, each
input read once and each input gradient written once. Sums are taken in fp32 (fp64 for fp64
inputs), so fp16 / bf16 inputs do not accumulate rounding edge by edge.

The eager path moves about three feature maps per edge in the forward (the accumulator read and
written again at each multiply-add) and four in the backward; these kernels move one forward and
two backward. The inputs must share one dense layout with the batch outermost (contiguous or
channels_last, what node outputs are); a gradient in another layout is copied into theirs.

Kernels take up to :data:`GROUP` inputs per launch; a node with more is summed group by group
(the output read back once per extra group). The block size is fixed (no autotuning), so the
kernels do not depend on a tuning that was not measured on the device.

Triton compiles these for CUDA; with ``TRITON_INTERPRET=1`` (set before Triton is imported) its
interpreter runs them on CPU tensors, which is how the tests check them.
"""

from typing import List, Optional, Sequence, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from .triton_support import interpreting

__all__ = ["GROUP", "fused_backward", "fused_weighted_sum"]

GROUP = 8
# Elements per program. Triton's interpreter (a CPU, in tests) pays per program, not per element,
# so there a program takes a whole small map.
BLOCK = 1024
INTERPRETER_BLOCK = 2**15


def _block() -> int:
    return INTERPRETER_BLOCK if interpreting() else BLOCK


@triton.jit
def _weighted(acc, f_ptr, w_row, i: tl.constexpr, base, offs, inside):
    w = tl.load(w_row + i)
    if w != 0.0:  # an edge dropped for this sample is not read
        acc += w * tl.load(f_ptr + base + offs, mask=inside, other=0.0).to(w.dtype)
    return acc


@triton.jit
def _sum_kernel(
    out_ptr, w_ptr, w_stride, col0, N,
    f0, f1, f2, f3, f4, f5, f6, f7,
    K: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    acc_dtype = w_ptr.dtype.element_ty
    b = tl.program_id(1)
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < N
    base = b.to(tl.int64) * N
    w_row = w_ptr + b * w_stride + col0
    if ACCUMULATE:
        acc = tl.load(out_ptr + base + offs, mask=inside, other=0.0).to(acc_dtype)
    else:
        acc = tl.zeros([BLOCK], dtype=acc_dtype)
    acc = _weighted(acc, f0, w_row, 0, base, offs, inside)
    if K > 1:
        acc = _weighted(acc, f1, w_row, 1, base, offs, inside)
    if K > 2:
        acc = _weighted(acc, f2, w_row, 2, base, offs, inside)
    if K > 3:
        acc = _weighted(acc, f3, w_row, 3, base, offs, inside)
    if K > 4:
        acc = _weighted(acc, f4, w_row, 4, base, offs, inside)
    if K > 5:
        acc = _weighted(acc, f5, w_row, 5, base, offs, inside)
    if K > 6:
        acc = _weighted(acc, f6, w_row, 6, base, offs, inside)
    if K > 7:
        acc = _weighted(acc, f7, w_row, 7, base, offs, inside)
    tl.store(out_ptr + base + offs, acc.to(out_ptr.dtype.element_ty), mask=inside)


@triton.jit
def _edge_backward(
    g, f_ptr, gf_ptr, w_row, i: tl.constexpr, partial, base, offs, inside, WRITE: tl.constexpr
):
    f = tl.load(f_ptr + base + offs, mask=inside, other=0.0).to(g.dtype)
    tl.store(partial + i, tl.sum(g * f, axis=0))
    if WRITE:
        w = tl.load(w_row + i)
        tl.store(gf_ptr + base + offs, (w * g).to(gf_ptr.dtype.element_ty), mask=inside)


@triton.jit
def _backward_kernel(
    g_ptr, w_ptr, w_stride, col0, partial_ptr, k_total, N,
    f0, f1, f2, f3, f4, f5, f6, f7,
    d0, d1, d2, d3, d4, d5, d6, d7,
    K: tl.constexpr, WRITE: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    block = tl.program_id(0)
    b = tl.program_id(1)
    offs = block * BLOCK + tl.arange(0, BLOCK)
    inside = offs < N
    base = b.to(tl.int64) * N
    w_row = w_ptr + b * w_stride + col0
    # partial: [B, nblocks, k_total] fp32; this program's k values are contiguous
    partial = partial_ptr + (b.to(tl.int64) * tl.num_programs(0) + block) * k_total + col0
    g = tl.load(g_ptr + base + offs, mask=inside, other=0.0).to(w_ptr.dtype.element_ty)
    _edge_backward(g, f0, d0, w_row, 0, partial, base, offs, inside, WRITE & 1)
    if K > 1:
        _edge_backward(g, f1, d1, w_row, 1, partial, base, offs, inside, WRITE & 2)
    if K > 2:
        _edge_backward(g, f2, d2, w_row, 2, partial, base, offs, inside, WRITE & 4)
    if K > 3:
        _edge_backward(g, f3, d3, w_row, 3, partial, base, offs, inside, WRITE & 8)
    if K > 4:
        _edge_backward(g, f4, d4, w_row, 4, partial, base, offs, inside, WRITE & 16)
    if K > 5:
        _edge_backward(g, f5, d5, w_row, 5, partial, base, offs, inside, WRITE & 32)
    if K > 6:
        _edge_backward(g, f6, d6, w_row, 6, partial, base, offs, inside, WRITE & 64)
    if K > 7:
        _edge_backward(g, f7, d7, w_row, 7, partial, base, offs, inside, WRITE & 128)


def _same_layout(t: Tensor, like: Tensor) -> Tensor:
    """``t`` with the strides of ``like`` (a copy when they differ)."""
    if t.stride() == like.stride():
        return t
    return torch.empty_like(like, dtype=t.dtype).copy_(t)


def _dense(features: Sequence[Tensor]) -> List[Tensor]:
    """``features`` in one dense layout, batch outermost: that of ``features[0]`` when it is
    one (contiguous or channels_last), else contiguous."""
    first = features[0]
    per_sample = first[0].numel() if first.shape[0] else 0
    dense = first.stride(0) == per_sample and (
        first.is_contiguous()
        or (first.dim() == 4 and first.is_contiguous(memory_format=torch.channels_last))
    )
    reference = first if dense else first.contiguous()
    return [_same_layout(f, reference) for f in features]


def _accumulation(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _groups(k: int) -> List[Tuple[int, int]]:
    return [(start, min(k, start + GROUP)) for start in range(0, k, GROUP)]


def _padded(tensors: Sequence[Tensor], filler: Tensor) -> List[Tensor]:
    return list(tensors) + [filler] * (GROUP - len(tensors))


def fused_weighted_sum(features: Sequence[Tensor], weights: Tensor) -> Tensor:
    """``sum_i weights[:, i] * features[i]`` in one pass (per group of :data:`GROUP` inputs).

    Args:
        features: ``k`` tensors ``[B, ...]`` of one shape and dtype.
        weights: ``[B, k]``.
    Returns:
        ``[B, ...]`` in the dtype and layout of ``features[0]``.
    """
    features = _dense(features)
    w = weights.detach().to(features[0].device, _accumulation(features[0])).contiguous()
    out = torch.empty_like(features[0])
    batch, n = out.shape[0], out[0].numel() if out.shape[0] else 0
    if batch == 0 or n == 0:
        return out.zero_()
    block = _block()
    grid = (triton.cdiv(n, block), batch)
    for start, stop in _groups(len(features)):
        chunk = _padded(features[start:stop], features[start])
        _sum_kernel[grid](
            out, w, w.stride(0), start, n, *chunk,
            K=stop - start, ACCUMULATE=start > 0, BLOCK=block,
        )  # fmt: skip
    return out


def fused_backward(
    grad: Tensor, features: Sequence[Tensor], weights: Tensor, needs: Sequence[bool]
) -> Tuple[Tensor, List[Optional[Tensor]]]:
    """The backward of :func:`fused_weighted_sum` in one pass over ``grad``.

    Args:
        grad: ``[B, ...]``, the gradient of the output.
        features, weights: as the forward got them.
        needs: per input, whether its gradient is wanted.
    Returns:
        ``grad_weights`` ``[B, k]`` (fp32, fp64 for fp64 inputs; per-sample inner products,
        deterministic: one partial sum per block, then a sum) and the input gradients (None
        where not wanted), in the inputs' layout and dtype.
    """
    features = _dense(features)
    g = _same_layout(grad, features[0])
    w = weights.detach().to(g.device, _accumulation(features[0])).contiguous()
    k, batch = len(features), g.shape[0]
    n = g[0].numel() if batch else 0
    grads = [torch.empty_like(features[0]) if need else None for need in needs]
    if batch == 0 or n == 0:
        return w.new_zeros(batch, k), [None if d is None else d.zero_() for d in grads]
    block = _block()
    blocks = triton.cdiv(n, block)
    partial = torch.empty(batch, blocks, k, device=g.device, dtype=w.dtype)
    for start, stop in _groups(k):
        chunk = _padded(features[start:stop], features[start])
        written = [grads[i] if grads[i] is not None else g for i in range(start, stop)]
        mask = sum(1 << (i - start) for i in range(start, stop) if grads[i] is not None)
        _backward_kernel[(blocks, batch)](
            g, w, w.stride(0), start, partial, k, n, *chunk, *_padded(written, g),
            K=stop - start, WRITE=mask, BLOCK=block,
        )  # fmt: skip
    return partial.sum(dim=1), grads
