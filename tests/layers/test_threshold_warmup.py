import pytest
import torch
from torch import nn

from ddw_detectron.layers import DAGStage, set_threshold_warmup


def _stage(edge_weight: float) -> DAGStage:
    """Three 1x1-conv nodes; every edge at ``edge_weight`` for every image."""
    stage = DAGStage([nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)], 4, 0.1)
    logit = torch.logit(torch.tensor(edge_weight)).item()
    with torch.no_grad():
        for router in stage.routers:
            router.fc.weight.zero_()
            router.fc.bias.fill_(logit)
    return stage


def _kept(stage: DAGStage, x: torch.Tensor) -> int:
    stage(x)
    return int((stage.adjacency[0] > 0).sum())


@pytest.mark.parametrize("iteration, kept", [(0, 3), (1, 3), (2, 3), (3, 0), (4, 0), (8, 0)])
def test_training_threshold_rises_from_zero_over_the_warmup(iteration, kept):
    stage = _stage(0.07).train()  # under THRESHOLD 0.1, over 0.1 * 2/4 = 0.05
    set_threshold_warmup(stage, iteration, 4)
    assert _kept(stage, torch.randn(2, 3, 4, 4)) == kept
    assert stage.threshold == 0.1  # the configured threshold itself is left alone


def test_inference_always_uses_the_full_threshold():
    stage = _stage(0.07)
    set_threshold_warmup(stage, 0, 4)
    stage.eval()
    with torch.no_grad():
        assert _kept(stage, torch.randn(2, 3, 4, 4)) == 0


def test_no_warmup_is_the_plain_threshold_and_values_are_updated_in_place():
    stage = _stage(0.07).train()
    buffer = stage.training_threshold
    set_threshold_warmup(stage, 1, 4)
    assert stage.training_threshold is buffer and float(buffer) == pytest.approx(0.025)
    set_threshold_warmup(stage, 0, 0)
    assert not stage.threshold_warming_up
    assert _kept(stage, torch.randn(2, 3, 4, 4)) == 0
    assert "training_threshold" not in stage.state_dict()  # not a checkpoint entry


def test_dropped_edges_still_get_gradients_during_the_warmup():
    stage = _stage(0.07).train()
    set_threshold_warmup(stage, 3, 4)  # threshold 0.075: every edge dropped
    stage(torch.randn(2, 3, 4, 4)).sum().backward()
    assert all(r.fc.bias.grad is not None for r in stage.routers)


def test_a_negative_warmup_is_refused():
    with pytest.raises(ValueError, match="warmup_iters must be >= 0, got -1"):
        set_threshold_warmup(_stage(0.5), 0, -1)


def test_a_compiled_stage_compiles_once_per_phase_not_once_per_step():
    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    stage = _stage(0.07).train()
    stage.compile(backend=counting_backend)
    x = torch.randn(2, 3, 4, 4)
    for iteration in range(8):
        set_threshold_warmup(stage, iteration, 6)
        stage(x)
    assert len(graphs) == 2  # warming up, then the plain threshold
