"""The fused Triton aggregation against the plain sum: on CUDA when there is one, else in
Triton's interpreter on the CPU (tests/conftest.py sets TRITON_INTERPRET=1). Tiny shapes: the
interpreter runs each kernel program in Python."""

import pytest
import torch
from torch import nn

from ddw_detectron.layers import DAGStage, aggregate, fused_aggregate
from ddw_detectron.layers.aggregate import resolve_kernel
from ddw_detectron.layers.fused_aggregate import GROUP, fused_backward, fused_weighted_sum

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def inputs(k, shape=(3, 5, 7, 6), dtype=torch.float64, layout="contiguous", seed=0):
    g = torch.Generator().manual_seed(seed)
    fs = [torch.randn(shape, generator=g, dtype=dtype) for _ in range(k)]
    if layout == "channels_last":
        fs = [f.to(memory_format=torch.channels_last) for f in fs]
    weights = torch.rand(shape[0], k, generator=g, dtype=dtype)
    return [f.to(DEVICE) for f in fs], weights.to(DEVICE)


def reference(features, weights, grad):
    """The plain sum and its gradients in float64."""
    fs = [f.double().requires_grad_() for f in features]
    w = weights.double().requires_grad_()
    out = sum(w[:, i].reshape(-1, 1, 1, 1) * f for i, f in enumerate(fs))
    out.backward(grad.double())
    return out, w.grad, [f.grad for f in fs]


def test_the_interpreter_or_cuda_runs_the_kernels():
    assert resolve_kernel("triton", torch.device(DEVICE)) == "triton"


# k = 1, a full group, and two groups (the second accumulating into the output); 210 and 2550
# elements per sample: one partial block and several blocks of 1024.
@pytest.mark.parametrize("k", [1, GROUP, GROUP + 3])
@pytest.mark.parametrize("shape", [(3, 5, 7, 6), (2, 6, 25, 17)])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_values_and_gradients_equal_the_plain_sum(k, shape, layout, monkeypatch):
    # The interpreter's blocks as large as CUDA's, so that maps take several.
    monkeypatch.setattr(fused_aggregate, "INTERPRETER_BLOCK", fused_aggregate.BLOCK)
    features, weights = inputs(k, shape, layout=layout)
    weights[0, 0] = 0.0  # dropped for one sample
    weights[:, -1] = 0.0  # dropped for every sample
    grad = torch.randn(shape, dtype=torch.float64, device=DEVICE)
    out = fused_weighted_sum(features, weights)
    grad_weights, grads = fused_backward(grad, features, weights, [True] * k)
    want, want_weights, want_grads = reference(features, weights, grad)
    assert out.stride() == features[0].stride()
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_weights, want_weights, rtol=1e-10, atol=1e-10)
    assert grad_weights[:, -1].abs().min() > 0  # the straight-through estimator needs it
    for got, expected in zip(grads, want_grads):
        assert got.stride() == features[0].stride()
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_only_the_wanted_input_gradients_are_written():
    features, weights = inputs(3)
    grad = torch.randn_like(features[0])
    _, grads = fused_backward(grad, features, weights, [False, True, False])
    assert grads[0] is None and grads[2] is None
    torch.testing.assert_close(grads[1], weights[:, 1].reshape(-1, 1, 1, 1) * grad)


def test_a_gradient_in_another_layout_than_the_inputs():
    features, weights = inputs(3, layout="channels_last")
    grad = torch.randn_like(features[0]).contiguous()  # NCHW against NHWC inputs
    grad_weights, grads = fused_backward(grad, features, weights, [True] * 3)
    _, want_weights, want_grads = reference(features, weights, grad)
    torch.testing.assert_close(grad_weights, want_weights)
    torch.testing.assert_close(grads[2], want_grads[2])


def test_half_precision_inputs_are_summed_in_fp32():
    # 2048 + seven times 1: fp16 holds 2056 but not 2049, so summing edge by edge in fp16 gives
    # 2048, one fp32 sum rounded once gives 2056.
    features = [torch.full((2, 1, 3, 3), 2048.0)] + [torch.ones(2, 1, 3, 3)] * 7
    features = [f.to(DEVICE, torch.float16) for f in features]
    weights = torch.ones(2, 8, device=DEVICE)
    eager = features[0].clone()
    for f in features[1:]:
        eager += f
    assert eager.unique().tolist() == [2048.0]
    out = fused_weighted_sum(features, weights)
    assert out.dtype == torch.float16 and out.unique().tolist() == [2056.0]
    grad_weights, _ = fused_backward(torch.ones_like(out), features, weights, [False] * 8)
    assert grad_weights.dtype == torch.float32 and grad_weights[0, 0].item() == 9 * 2048.0


def test_gradcheck_through_aggregate():
    features, weights = inputs(3, shape=(2, 2, 3, 3))
    features = [f.requires_grad_() for f in features]
    weights.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda w, *fs: aggregate(fs, w, kernel="triton"), (weights, *features), eps=1e-6, atol=1e-5
    )


class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


def stages():
    torch.manual_seed(0)
    eager = DAGStage([Block(4) for _ in range(4)], 4, threshold=0.3, aggregation_kernel="eager")
    fused = DAGStage([Block(4) for _ in range(4)], 4, threshold=0.3, aggregation_kernel="triton")
    fused.load_state_dict(eager.state_dict())
    return eager.double().to(DEVICE), fused.double().to(DEVICE)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_a_stage_trains_and_infers_with_the_triton_kernel_as_with_the_eager_one(layout):
    eager, fused = stages()
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64, device=DEVICE)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    for stage in (eager, fused):  # training with u_j recomputed in backward (the buffer)
        stage(x).square().sum().backward()
    torch.testing.assert_close(fused.adjacency, eager.adjacency)
    for (name, a), b in zip(eager.named_parameters(), fused.parameters()):
        torch.testing.assert_close(b.grad, a.grad, msg=name)
    with torch.no_grad():
        torch.testing.assert_close(fused.eval()(x), eager.eval()(x))
