"""What every DDW backbone shares (``modeling.dynamic.DDWBackbone``): its wiring statistics go to
whatever Detectron2 trainer runs it, through the active ``EventStorage``."""

import json

import pytest
import torch
from detectron2.engine import DefaultTrainer, SimpleTrainer
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from torch import nn

from ddw_detectron.config import load_config
from ddw_detectron.modeling.dynamic import dag_stage_factory
from tests.helpers import CONFIGS, TINY_DETECTION, build, make_cfg

pytestmark = pytest.mark.long(40)

STAGES = ("res2", "res3", "res4", "res5")


def test_statistics_go_to_the_active_storage_every_log_period():
    backbone = build("resnet", make_cfg("resnet", **{"MODEL.DDW.LOG_PERIOD": 3})).train()
    x = torch.randn(2, 3, 64, 64)
    backbone(x)  # no storage: nothing to log to, no error
    with EventStorage(start_iter=0) as storage:
        for iteration in range(6):
            storage.iter = iteration
            backbone(x)
        logged = storage.history("ddw/res3/kept")
    assert [i for _, i in logged.values()] == [2, 5]  # iterations 3 and 6
    assert 0.0 < logged.latest() <= 1.0


def test_nothing_is_logged_at_inference():
    backbone = build("resnet", make_cfg("resnet", **{"MODEL.DDW.LOG_PERIOD": 1})).eval()
    with EventStorage() as storage, torch.no_grad():
        backbone(torch.randn(1, 3, 64, 64))
        assert not [k for k in storage.latest() if k.startswith("ddw/")]


def tiny_cfg(output, *opts):
    cfg = load_config(
        str(CONFIGS / "Demo" / "faster_rcnn_DDW_R_18_FPN_shapes.yaml"),
        [*TINY_DETECTION, "DATASETS.TEST", "()", "SOLVER.MAX_ITER", "4", "MODEL.DDW.LOG_PERIOD",
         "2", "OUTPUT_DIR", str(output), *opts],
    )  # fmt: skip
    return cfg


def test_a_stock_default_trainer_logs_the_wiring(cache, tmp_path):
    trainer = DefaultTrainer(tiny_cfg(tmp_path))  # Detectron2's own, no DDW hook
    trainer.resume_or_load(resume=False)
    trainer.train()
    lines = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    keys = set().union(*lines)
    for stage in STAGES:
        for stat in ("mean_edge_weight", "kept", "diversity", "non_chain_kept_share"):
            assert f"ddw/{stage}/{stat}" in keys


def test_a_plain_simple_trainer_loop_logs_the_wiring(cache, tmp_path):
    from ddw_detectron.engine import DDWTrainer

    cfg = tiny_cfg(tmp_path)
    model = build_model(cfg)
    loader = DDWTrainer.build_train_loader(cfg)
    trainer = SimpleTrainer(model, loader, torch.optim.SGD(model.parameters(), lr=0.001))
    trainer.train(0, 4)
    history = trainer.storage.history("ddw/res4/kept")
    assert [i for _, i in history.values()] == [1, 3]


def test_a_bare_dag_stage_has_the_configs_defaults():
    import inspect

    from ddw_detectron.layers import DAGStage

    ddw = make_cfg().MODEL.DDW
    stage = DAGStage([nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1)], 4)
    assert stage.threshold == ddw.THRESHOLD == 0.1
    assert stage.skip_unused_nodes is ddw.SKIP_UNUSED_NODES is True
    assert (stage.gate, stage.router_mode) == (ddw.GATE, ddw.ROUTER_MODE)
    assert (stage.memory_efficient, stage.aggregation_kernel) == (
        ddw.MEMORY_EFFICIENT,
        ddw.AGGREGATION_KERNEL,
    )
    assert stage.keep_strongest_input is ddw.KEEP_STRONGEST_INPUT
    factory = inspect.signature(dag_stage_factory).parameters
    for name, parameter in inspect.signature(DAGStage).parameters.items():
        if name in factory and parameter.default is not inspect.Parameter.empty:
            assert factory[name].default == parameter.default, name
