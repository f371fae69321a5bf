"""The benchmark's floor and its classification settings, by hand."""

import torch

from ddw_lab.benchmark.classification import SETTINGS, classification_models
from ddw_lab.benchmark.floor import bandwidth, floor_ratio, wiring_bytes
from tests.helpers import force_wiring, make_stage


def test_floor_bytes_by_hand():
    stage = make_stage(4, threshold=0.5).eval()  # node outputs [2, 8, 8, 8] float32: 4 KiB
    force_wiring(stage, {(0, 1), (0, 2), (1, 2), (2, 3)})  # kept into nodes 1..3: 1, 2, 1
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        moved = wiring_bytes(stage, lambda: stage(x), training=False)
    one = 2 * 8 * 8 * 8 * 4
    assert moved == ((1 + 1) + (2 + 1) + (1 + 1)) * one + 3 * one  # sums, then 3 routers
    stage.train()
    trained = wiring_bytes(stage, lambda: stage(x).sum().backward(), training=True)
    backward = sum((1 + 3 * k) + (k + 1) for k in (1, 2, 1)) * one + 3 * one
    assert trained == moved + backward
    assert floor_ratio(10**9, 10**10, 1.0) == 1.1


def test_bandwidth_is_measured():
    assert 1e8 < bandwidth("cpu", megabytes=16, repeats=2) < 1e13


def test_classification_twins_share_every_weight_but_the_routers():
    models = classification_models(SETTINGS["the demo's R-34, 32 px, batch 64"][0], "cpu")
    static, ddw = models["static"].state_dict(), models["ddw"].state_dict()
    assert set(static) == {k for k in ddw if ".routers." not in k}
    assert all(torch.equal(static[k], ddw[k]) for k in static)
