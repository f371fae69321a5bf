import pytest
import torch

from ddw_detectron.layers import aggregate
from ddw_detectron.layers.aggregate import _per_sample_dots


def plain_sum(features, weights):
    return sum(weights[:, i].reshape(-1, 1, 1, 1) * f for i, f in enumerate(features))


def make_inputs(k, layout, dtype=torch.double, batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    weights = torch.rand(batch, k, generator=g, dtype=dtype).requires_grad_()
    features = []
    for _ in range(k):
        if layout == "contiguous":
            f = torch.randn(batch, 4, 5, 6, generator=g, dtype=dtype)
        elif layout == "channels_last":
            f = torch.randn(batch, 4, 5, 6, generator=g, dtype=dtype).to(
                memory_format=torch.channels_last
            )
        else:  # a strided view: every other column of a wider tensor
            f = torch.randn(batch, 4, 5, 12, generator=g, dtype=dtype)[..., ::2]
            assert not f.is_contiguous()
        features.append(f.requires_grad_())
    return features, weights


@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_gradcheck(k, layout):
    features, weights = make_inputs(k, layout)
    assert torch.autograd.gradcheck(
        lambda w, *fs: aggregate(fs, w), (weights, *features), eps=1e-6, atol=1e-5
    )


@pytest.mark.parametrize("zero", [[0], [1, 3], [0, 1, 2, 3]])
def test_gradcheck_with_edges_zero_for_every_sample(zero):
    # Such edges are left out of the sum and get no feature gradient, but their weights still
    # get theirs (the straight-through estimator needs it).
    features, weights = make_inputs(4, "contiguous")
    with torch.no_grad():
        weights[:, zero] = 0.0
    assert torch.autograd.gradcheck(
        lambda w, *fs: aggregate(fs, w), (weights, *features), eps=1e-6, atol=1e-5
    )
    out = aggregate(features, weights)
    grads = torch.autograd.grad(out.sum(), [weights, *features], allow_unused=True)
    assert all(grads[1 + i] is None or not grads[1 + i].any() for i in zero)
    assert grads[0][:, zero].abs().sum() > 0


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_equals_plain_autograd_sum(layout):
    features, weights = make_inputs(4, layout, dtype=torch.float32)
    out = aggregate(features, weights)
    expected = plain_sum(features, weights)
    torch.testing.assert_close(out, expected)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, [weights, *features], grad)
    want = torch.autograd.grad(expected, [weights, *features], grad)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_channels_last_output_stays_channels_last():
    features, weights = make_inputs(3, "channels_last", dtype=torch.float32)
    assert aggregate(features, weights).is_contiguous(memory_format=torch.channels_last)


def saved_storage_bytes(fn):
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


@pytest.mark.parametrize("k", [2, 6])
def test_saves_no_more_than_plain_sum(k):
    features, weights = make_inputs(k, "contiguous", dtype=torch.float32)
    buffered = saved_storage_bytes(lambda: aggregate(features, weights))
    plain = saved_storage_bytes(lambda: plain_sum(features, weights))
    assert 0 < buffered <= plain


def test_plain_ops_without_autograd():
    features, weights = make_inputs(3, "contiguous", dtype=torch.float32)
    with torch.no_grad():
        out = aggregate(features, weights)
    assert out.grad_fn is None
    inputs = (weights.detach(), *[f.detach() for f in features])
    traced = torch.jit.trace(lambda w, a, b, c: aggregate([a, b, c], w), inputs)
    assert "PythonOp" not in str(traced.graph)


def test_mixed_precision_inputs_sum_in_widest_dtype():
    features, weights = make_inputs(2, "contiguous", dtype=torch.float32)
    half = [features[0].detach().bfloat16().requires_grad_(), features[1]]
    out = aggregate(half, weights)
    assert out.dtype == torch.float32
    out.sum().backward()
    assert half[0].grad.dtype == torch.bfloat16 and weights.grad.dtype == torch.float32


@pytest.mark.parametrize(
    "features, weights, match",
    [
        ([], torch.ones(1, 0), "at least one"),
        ([torch.ones(2, 3, 4, 4)], torch.ones(2, 2), r"weights must be \[B, k\]"),
        (
            [torch.ones(2, 3, 4, 4), torch.ones(2, 3, 4, 5)],
            torch.ones(2, 2),
            "features\\[1\\] has shape",
        ),
        ([torch.ones(2, 3, 4, 4)], torch.ones(3, 1), "batch size"),
    ],
)
def test_bad_input(features, weights, match):
    with pytest.raises(ValueError, match=match):
        aggregate(features, weights)


@pytest.mark.parametrize("batched", [True, False])
def test_per_sample_dots_both_ways(batched):
    # The batched GEMV serves accelerators, the per-sample dots the CPU; both must agree.
    g = torch.randn(3, 1000, dtype=torch.float64)
    f = torch.randn(3, 1000, dtype=torch.float64)
    torch.testing.assert_close(_per_sample_dots(g, f, batched), (g * f).sum(dim=1))


def test_forward_and_backward_never_read_values_on_other_devices():
    # A meta tensor has no values: any host read (.item(), .tolist(), a data-dependent branch)
    # would fail.
    features = [torch.empty(2, 4, 8, 8, device="meta", requires_grad=True) for _ in range(3)]
    weights = torch.empty(2, 3, device="meta", requires_grad=True)
    out = aggregate(features, weights)
    out.sum().backward()
    assert weights.grad.shape == (2, 3) and features[2].grad.shape == (2, 4, 8, 8)
