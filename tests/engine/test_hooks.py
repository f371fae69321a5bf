import pytest
import torch
from torch import nn

from ddw_detectron.engine import ThresholdWarmupHook, WiringHook, attach_sparsity_loss
from ddw_detectron.layers import DAGStage


class LossModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.stage = DAGStage([nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)], 4)

    def forward(self, x):
        return {"loss_main": self.stage(x).mean()}


def test_sparsity_loss_is_added_in_training_only():
    model = LossModel().train()
    attach_sparsity_loss(model, 0.5)
    losses = model(torch.randn(2, 3, 4, 4))
    assert set(losses) == {"loss_main", "loss_ddw_sparsity"}
    expected = 0.5 * model.stage.edge_weight_l1
    torch.testing.assert_close(losses["loss_ddw_sparsity"], expected)
    model.eval()
    with torch.no_grad():
        assert set(model(torch.randn(1, 3, 4, 4))) == {"loss_main"}


def test_wiring_hook_period_comes_from_the_config():
    from tests.helpers import make_cfg

    cfg = make_cfg("resnet", **{"MODEL.DDW.LOG_PERIOD": 7, "TEST.EVAL_PERIOD": 50})
    hook = WiringHook.from_config(cfg)
    assert (hook._period, hook._eval_period) == (7, 50)
    cfg.MODEL.DDW.LOG_PERIOD = 0
    with pytest.raises(ValueError, match="MODEL.DDW.LOG_PERIOD = 0 is invalid: must be >= 1"):
        WiringHook.from_config(cfg)


def test_wiring_hook_stops_a_collapsed_run_and_logs_router_gradients():
    from detectron2.engine import SimpleTrainer

    from ddw_detectron.utils.collapse import CollapseMonitor, RunCollapsed

    torch.manual_seed(0)
    model = LossModel().train()
    with torch.no_grad():  # every edge at 0.05, under the threshold 0.1: node 2 has no input
        for router in model.stage.routers:
            router.fc.weight.zero_()
            router.fc.bias.fill_(-2.944)
    model.stage.threshold = 0.1
    data = iter(lambda: torch.randn(2, 3, 4, 4), None)
    trainer = SimpleTrainer(model, data, torch.optim.SGD(model.parameters(), lr=0.0))
    trainer.register_hooks([WiringHook(period=1, collapse=CollapseMonitor(0.5, 3))])
    with pytest.raises(RunCollapsed, match="collapsed at iteration 3: the output of stage"):
        trainer.train(0, 100)
    assert trainer.iter == 2
    latest = trainer.storage.latest()
    assert latest["ddw/stage/disconnected"][0] == 1.0
    assert latest["ddw/stage/router_grad_norm"][0] > 0.0  # straight-through: dropped edges too


def test_threshold_warmup_hook_raises_the_training_threshold_per_iteration():
    from detectron2.engine import SimpleTrainer

    model = LossModel().train()
    seen = []
    model.stage.register_forward_pre_hook(
        lambda stage, args: (
            seen.append(float(stage.training_threshold))
            if stage.threshold_warming_up
            else seen.append(stage.threshold)
        )
    )
    data = iter(lambda: torch.randn(2, 3, 4, 4), None)
    trainer = SimpleTrainer(model, data, torch.optim.SGD(model.parameters(), lr=0.0))
    trainer.register_hooks([ThresholdWarmupHook(4)])
    trainer.train(2, 6)  # as a run resumed at iteration 2
    assert seen == pytest.approx([0.05, 0.075, 0.1, 0.1])
    with pytest.raises(ValueError, match="THRESHOLD_WARMUP_ITERS = -1 is invalid"):
        ThresholdWarmupHook(-1)
