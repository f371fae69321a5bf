import pytest
import torch

from ddw_detectron.layers import Router, SharedRouter
from ddw_detectron.layers.router import build_router, logit


@pytest.mark.parametrize("hidden_dim", [0, 8])
def test_shapes_and_range(hidden_dim):
    router = Router(16, 3, hidden_dim=hidden_dim)
    out = router(torch.randn(5, 16, 7, 9))
    assert out.shape == (5, 3)
    assert ((out > 0) & (out < 1)).all()
    out.sum().backward()
    assert router.fc.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("hidden_dim", [0, 8])
def test_near_static_start_meets_the_weights_for_any_input_and_trains_every_layer(hidden_dim):
    torch.manual_seed(0)
    router = Router(2048, 3, hidden_dim=hidden_dim, init_weights=[0.99, 0.05, 0.05])
    optimizer = torch.optim.SGD(router.parameters(), lr=1e-5)
    # Pooled channels of a trained network's last stage are large and many: whatever their
    # size, the start is the given weights exactly (random last-layer weights of std 0.01 moved
    # these logits by about 25 here).
    x = 50 * torch.randn(4, 2048, 5, 5).abs()
    out = router(x)
    want = torch.tensor([[0.99, 0.05, 0.05]]).expand(4, 3)
    torch.testing.assert_close(out, want, atol=1e-6, rtol=0)
    for step in range(2):
        optimizer.zero_grad()
        router(x).mul(torch.tensor([1.0, -1.0, 1.0])).sum().backward()
        if step == 0:
            assert router.fc.weight.grad.abs().sum() > 0  # it moves from the first step
        optimizer.step()
    for name, parameter in router.named_parameters():
        assert parameter.grad.abs().sum() > 0, name  # the hidden layer from the second


@pytest.mark.parametrize("hidden_dim", [0, 8])
def test_random_start_gives_images_their_own_weights(hidden_dim):
    torch.manual_seed(0)
    router = Router(64, 3, hidden_dim=hidden_dim)
    # Images whose channels differ in level, as feature maps of different images do.
    out = router(torch.relu(torch.randn(8, 64, 5, 5) + 2 * torch.randn(8, 64, 1, 1)))
    # PyTorch's default nn.Linear init: images differ by far more than rounding.
    assert (out.max(dim=0).values - out.min(dim=0).values).min() > 0.02


def test_pooling_is_global_average():
    router = Router(2, 1)
    x = torch.randn(3, 2, 4, 4)
    expected = torch.sigmoid(router.fc(x.mean(dim=(2, 3))))
    torch.testing.assert_close(router(x), expected)


def test_shared_router_gives_every_input_the_same_weights_and_learns_them():
    router = SharedRouter(3, init_weights=[0.9, 0.2, 0.6])
    out = router(torch.randn(5, 16, 4, 4))
    torch.testing.assert_close(out, torch.tensor([[0.9, 0.2, 0.6]]).expand(5, 3))
    (out * torch.arange(5.0)[:, None]).sum().backward()
    # d/dlogit sigmoid = p (1 - p), summed over the 5 samples (weights 0..4).
    expected = torch.tensor([0.9 * 0.1, 0.2 * 0.8, 0.6 * 0.4]) * 10.0
    torch.testing.assert_close(router.logits.grad, expected)


@pytest.mark.parametrize(
    "router", [Router(4, 3, hidden_dim=5), SharedRouter(3)], ids=["dynamic", "shared"]
)
def test_set_constant_fixes_the_output_and_drops_the_edges_under_the_threshold(router):
    router.set_constant(torch.tensor([0.7, 0.05, 0.3]), threshold=0.1)
    out = router(torch.randn(6, 4, 3, 3) * 10)
    torch.testing.assert_close(out[:, 0], torch.full((6,), 0.7))
    torch.testing.assert_close(out[:, 2], torch.full((6,), 0.3))
    assert (out[:, 1] < 1e-10).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_edges"):
        Router(4, 0)
    with pytest.raises(ValueError, match="num_edges"):
        SharedRouter(0)
    with pytest.raises(ValueError, match="hidden_dim"):
        Router(4, 2, hidden_dim=-1)
    with pytest.raises(ValueError, match="init_weights has 1 values for 2 edges"):
        Router(4, 2, init_weights=[0.5])
    with pytest.raises(ValueError, match="init_weights has 1 values for 2 edges"):
        SharedRouter(2, init_weights=[0.5])
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        logit(1.0)
    with pytest.raises(ValueError, match=r"router mode must be one of \('dynamic', 'shared'\)"):
        build_router("fixed", 4, 2)
