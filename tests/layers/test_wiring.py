import torch

from ddw_detectron.layers import freeze_wiring
from tests.helpers import make_stage


def test_frozen_stage_uses_the_given_wiring_for_every_image():
    stage = make_stage(4, threshold=0.3).eval()
    with torch.no_grad():
        for router in stage.routers:
            router.fc.weight.normal_(std=2.0)
    fixed = torch.zeros(4, 4)
    fixed[0, 1], fixed[1, 2], fixed[2, 3], fixed[0, 3], fixed[0, 2] = 0.9, 1.0, 0.8, 0.5, 0.2
    freeze_wiring(stage, fixed)
    with torch.no_grad():
        stage(torch.randn(3, 3, 16, 16) * 5)
    expected = fixed.clone()
    expected[0, 2] = 0.0  # under the threshold: dropped
    for a in stage.adjacency:
        torch.testing.assert_close(a, expected, atol=1e-5, rtol=0)
