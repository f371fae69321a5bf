import pytest
import torch

from ddw_detectron.layers import aggregate


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
        ([torch.ones(2, 3, 4, 4), torch.ones(2, 3, 4, 5)], torch.ones(2, 2), "features\\[1\\] has shape"),
        ([torch.ones(2, 3, 4, 4)], torch.ones(3, 1), "batch size"),
    ],
)
def test_bad_input(features, weights, match):
    with pytest.raises(ValueError, match=match):
        aggregate(features, weights)
