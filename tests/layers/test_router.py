import pytest
import torch

from ddw_detectron.layers import Router
from ddw_detectron.layers.router import logit


@pytest.mark.parametrize("hidden_dim", [0, 8])
def test_shapes_and_range(hidden_dim):
    router = Router(16, 3, hidden_dim=hidden_dim)
    out = router(torch.randn(5, 16, 7, 9))
    assert out.shape == (5, 3)
    assert ((out > 0) & (out < 1)).all()
    out.sum().backward()
    assert router.fc.weight.grad.abs().sum() > 0


def test_init_weights_are_met_for_any_input():
    router = Router(16, 3, init_weights=[0.99, 0.05, 0.05])
    out = router(torch.randn(4, 16, 5, 5) * 10)
    torch.testing.assert_close(out, torch.tensor([[0.99, 0.05, 0.05]]).expand(4, 3))


def test_pooling_is_global_average():
    router = Router(2, 1)
    x = torch.randn(3, 2, 4, 4)
    expected = torch.sigmoid(router.fc(x.mean(dim=(2, 3))))
    torch.testing.assert_close(router(x), expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_edges"):
        Router(4, 0)
    with pytest.raises(ValueError, match="hidden_dim"):
        Router(4, 2, hidden_dim=-1)
    with pytest.raises(ValueError, match="init_weights has 1 values for 2 edges"):
        Router(4, 2, init_weights=[0.5])
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        logit(1.0)
