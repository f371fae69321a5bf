"""``ddw_detectron.utils.freezing``: a trained model's wiring fixed over a dataset."""

import pytest
import torch
from detectron2.data import DatasetCatalog

from ddw_detectron.config import load_config
from ddw_detectron.engine import DDWTrainer
from ddw_detectron.layers import collect_wiring
from ddw_detectron.utils.freezing import fixed_wiring, freeze_over_dataset
from ddw_detectron.utils.wiring_runs import collect_over_records
from tests.helpers import CONFIGS

DEMO = CONFIGS / "Demo" / "faster_rcnn_DDW_R_18_FPN_shapes.yaml"


def test_fixed_wiring_by_hand():
    a = torch.zeros(3, 3, 3)
    a[:, 0, 1] = torch.tensor([0.9, 0.7, 0.8])
    a[:, 1, 2] = torch.tensor([0.5, 0.0, 0.3])
    torch.testing.assert_close(fixed_wiring(a, "mean")[0, 1], torch.tensor(0.8))
    mode = fixed_wiring(a, "mode")  # pattern {0->1, 1->2} of images 0 and 2
    torch.testing.assert_close(mode[0, 1], torch.tensor(0.85))
    torch.testing.assert_close(mode[1, 2], torch.tensor(0.4))
    with pytest.raises(ValueError, match="mode = 'median' is invalid"):
        fixed_wiring(a, "median")


def test_frozen_model_uses_one_wiring_for_every_image():
    cfg = load_config(str(DEMO), ["MODEL.DDW.ROUTER_INIT_CHAIN", "0.0"])
    torch.manual_seed(0)
    model = DDWTrainer.build_model(cfg)
    fixed = freeze_over_dataset(cfg, model, "ddw_shapes_val", mode="mean", max_images=4)
    assert set(fixed) == {"res2", "res3", "res4", "res5"}
    records = DatasetCatalog.get("ddw_shapes_val")[4:7]
    run = collect_over_records(cfg, model, records)
    for stage, adjacency in fixed.items():
        expected = adjacency * (adjacency > cfg.MODEL.DDW.THRESHOLD)
        for used in run.wirings[stage]:
            torch.testing.assert_close(used, expected, atol=1e-5, rtol=0)
    assert collect_wiring(model)


def test_static_model_is_refused():
    cfg = load_config(str(DEMO), ["MODEL.DDW.DYNAMIC_STAGES", "[]"])
    with pytest.raises(
        ValueError, match="the model has no DDW stages; its wiring is static already"
    ):
        freeze_over_dataset(cfg, DDWTrainer.build_model(cfg), "ddw_shapes_val")


def test_classifier_frozen_over_batches_uses_the_mean_wiring():
    from ddw_detectron.classification import add_classification_config, build_classifier
    from ddw_detectron.utils.freezing import freeze_over_batches

    config = DEMO.parents[1] / "ImageNet" / "DDW_R_18.yaml"
    cfg = load_config(str(config), [], extra=[add_classification_config])
    torch.manual_seed(0)
    model = build_classifier(cfg).eval()
    images = torch.rand(6, 3, 32, 32) * 255
    model(images)
    expected = {name: a.mean(0) for name, a in collect_wiring(model).items()}
    fixed = freeze_over_batches(model, [images[:4], images[4:]])
    assert set(fixed) == {"res2", "res3", "res4", "res5"}
    for stage, adjacency in fixed.items():
        torch.testing.assert_close(adjacency, expected[stage], atol=1e-6, rtol=0)
    model(torch.rand(3, 3, 32, 32) * 255)
    for stage, used in collect_wiring(model).items():
        kept = expected[stage] * (expected[stage] > cfg.MODEL.DDW.THRESHOLD)
        for image in used:
            torch.testing.assert_close(image, kept, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="no images"):
        freeze_over_batches(model, [])
