"""The start near the base network (``ROUTER_INIT_CHAIN 0.99``, ``ROUTER_INIT_OTHER 0.05``) is
near it for every family and depth: the wiring is exactly the chain for every image, and each
stage's output keeps the static network's direction."""

import pytest
import torch

from ddw_detectron.classification import add_classification_config
from ddw_detectron.config import load_config
from ddw_detectron.layers import collect_wiring
from ddw_detectron.modeling.family import family_of
from tests.helpers import ROOT

NEAR_CHAIN = ["MODEL.DDW.ROUTER_INIT_CHAIN", "0.99", "MODEL.DDW.ROUTER_INIT_OTHER", "0.05"]


def bottom_up(config: str, opts):
    cfg = load_config(
        str(ROOT / "configs" / "ImageNet" / config),
        ["CLS.NUM_CLASSES", "10", *opts],
        extra=[add_classification_config],
    )
    family = family_of(cfg)
    torch.manual_seed(0)
    return family.build_bottom_up(cfg, out_features=list(family.stage_names)), cfg


@pytest.mark.parametrize(
    "config",
    [
        "DDW_R_50.yaml",
        "DDW_R_101.yaml",
        "DDW_X_101_32x8d.yaml",
        "DDW_MobileNetV2_1.0.yaml",
        "DDW_RegNetX_4GF.yaml",
    ],
)
def test_near_chain_start_is_the_chain_and_keeps_each_stage_output(config):
    ddw, cfg = bottom_up(config, NEAR_CHAIN)
    static, _ = bottom_up(config, ["MODEL.DDW.DYNAMIC_STAGES", "[]"])
    static.load_state_dict({k: v for k, v in ddw.state_dict().items() if ".routers." not in k})
    # Images of unlike brightness: pooled node outputs differ in size between images.
    x = torch.randn(3, 3, 64, 64) * torch.tensor([0.5, 4.0, 30.0]).view(3, 1, 1, 1)
    for training in (False, True):  # eval first: a training forward moves the BN statistics
        ddw.train(training)
        static.train(training)
        with torch.no_grad():
            got, want = ddw(x), static(x)
        wiring = collect_wiring(ddw)
        assert sorted(wiring) == sorted(cfg.MODEL.DDW.DYNAMIC_STAGES)
        for name, adjacency in wiring.items():
            n = adjacency.shape[1]
            if n == 1:
                continue  # a stage of one block has no edge
            chain = torch.zeros(n, n, dtype=torch.bool)
            chain[torch.arange(n - 1), torch.arange(1, n)] = True
            assert (adjacency[:, chain] - 0.99).abs().max() < 1e-5, name
            assert not adjacency[:, ~chain].any(), name  # every other edge under the threshold
        if training:
            continue  # batch statistics of a random network amplify the chain's 1% (chaos)
        for name in got:
            cosine = torch.nn.functional.cosine_similarity(
                got[name].flatten(1).double(), want[name].flatten(1).double(), dim=1
            )
            assert cosine.min() > 0.99, (name, cosine)
