import importlib

import pytest
import torch

from ddw_detectron.layers import aggregate

# The module, not the function that ddw_detectron.layers exports under the same name.
aggregate_module = importlib.import_module("ddw_detectron.layers.aggregate")


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


@pytest.mark.parametrize("method", ["batch_rows", "rows", "dots"])
@pytest.mark.parametrize("batch", [1, 5])
def test_per_sample_dots_every_method(method, batch, monkeypatch):
    # One row sum over the batch serves accelerators, chunked row sums and per-sample dots the
    # CPU (small and large maps); all must agree. A small chunk size makes the row sums take
    # several chunks.
    monkeypatch.setattr(aggregate_module, "_ROW_CHUNK_NUMEL", 2000)
    g = torch.randn(batch, 1000, dtype=torch.float64)
    f = torch.randn(batch, 1000, dtype=torch.float64)
    got = aggregate_module._per_sample_dots(g, f, method)
    torch.testing.assert_close(got, (g * f).sum(dim=1))


@pytest.mark.parametrize("per_sample", [4 * 5 * 6, 2**15 + 1])
def test_dot_method_follows_map_size(per_sample):
    flat = torch.zeros(2, per_sample)
    assert aggregate_module._dot_method(flat) == ("rows" if per_sample <= 2**15 else "dots")
    # Any other device: one row sum over the batch (never a batched GEMV, docs/cost.md).
    assert aggregate_module._dot_method(flat.to("meta")) == "batch_rows"


def test_batch_row_sums_of_half_precision_maps_are_summed_in_fp32():
    # Under AMP the maps are fp16: a sum of 2^17 products of 2 would be inf in fp16.
    g = torch.full((2, 2**17), 2.0, dtype=torch.float16)
    dots = aggregate_module._per_sample_dots(g, torch.ones_like(g), "batch_rows")
    assert dots.dtype == torch.float32 and dots.tolist() == [2.0**18, 2.0**18]


@pytest.mark.parametrize("method", ["batch_rows", "rows", "dots"])
def test_gradcheck_with_every_dot_method(method, monkeypatch):
    # The default test maps are small (row sums); forcing the threshold to 0 takes the BLAS dots;
    # the accelerators' method is forced on the CPU.
    if method == "dots":
        monkeypatch.setattr(aggregate_module, "_ROW_SUM_MAX_PER_SAMPLE", 0)
    if method == "batch_rows":
        monkeypatch.setattr(aggregate_module, "_dot_method", lambda flat: "batch_rows")
    features, weights = make_inputs(3, "channels_last")
    assert aggregate_module._dot_method(features[0].reshape(3, -1)) == method
    assert torch.autograd.gradcheck(
        lambda w, *fs: aggregate(fs, w), (weights, *features), eps=1e-6, atol=1e-5
    )


def test_forward_and_backward_never_read_values_on_other_devices():
    # A meta tensor has no values: any host read (.item(), .tolist(), a data-dependent branch)
    # would fail.
    features = [torch.empty(2, 4, 8, 8, device="meta", requires_grad=True) for _ in range(3)]
    weights = torch.empty(2, 3, device="meta", requires_grad=True)
    out = aggregate(features, weights)
    out.sum().backward()
    assert weights.grad.shape == (2, 3) and features[2].grad.shape == (2, 4, 8, 8)


@pytest.mark.parametrize(
    "device, expected", [("cpu", "eager"), ("cuda", "eager"), ("meta", "eager")]
)
def test_auto_kernel_by_device_type(device, expected):
    # The choices of docs/cost.md; a device type never measured takes the eager kernel.
    assert aggregate_module.AUTO_KERNELS.get(device, "eager") == expected
    assert aggregate_module.resolve_kernel("auto", torch.device(device)) == expected
    assert aggregate_module.resolve_kernel("eager", torch.device(device)) == "eager"


def test_triton_kernel_runs_on_cuda_or_in_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert aggregate_module.resolve_kernel("triton", torch.device("cuda")) == "triton"
    with pytest.raises(ValueError, match="runs on CUDA .*TRITON_INTERPRET=1"):
        aggregate_module.resolve_kernel("triton", torch.device("cpu"))
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert aggregate_module.resolve_kernel("triton", torch.device("cpu")) == "triton"
    with pytest.raises(ValueError, match="must be one of"):
        aggregate_module.resolve_kernel("fast", torch.device("cpu"))
