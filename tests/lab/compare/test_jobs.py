"""The comparison's jobs in this process: the derived arms impose another image's wiring (a
hand-made case for classification and detection), and the detection jobs at tiny sizes."""

import json

import pytest
import torch
from torch.utils.data import DataLoader

from ddw_detectron.classification import add_classification_config, build_classifier
from ddw_detectron.classification.data import collate_readable
from ddw_lab import jobs
from ddw_lab.compare import Comparison
from ddw_lab.compare import jobs as derived
from tests.helpers import TINY_DEMO_DETECTION, TINY_PRETRAINING, make_cfg

pytestmark = pytest.mark.long(60)


def tiny_classifier():
    cfg = make_cfg("resnet", **{"MODEL.RESNETS.DEPTH": 34})
    add_classification_config(cfg)
    cfg.CLS.NUM_CLASSES = 3
    torch.manual_seed(0)
    return build_classifier(cfg).eval()


def test_classification_evaluation_imposes_the_wiring_it_is_given():
    model = tiny_classifier()
    images = torch.rand(6, 3, 32, 32) * 255
    samples = [(images[i], i % 3) for i in range(6)]
    loader = DataLoader(samples, batch_size=4, collate_fn=collate_readable)
    own, targets, wirings = derived._classify(model, loader)
    assert own.shape == (6, 3) and set(wirings) == {"res2", "res3", "res4", "res5"}
    other = torch.tensor([1, 2, 3, 4, 5, 0])
    _, _, used = derived._classify(
        model, loader, lambda idx: {s: w[other[idx]] for s, w in wirings.items()}
    )
    for stage, adjacency in wirings.items():
        assert torch.equal(used[stage], adjacency[other])
    with torch.no_grad():  # image 0 with image 1's wiring: as computed for image 0 alone
        from ddw_detectron.layers import use_wiring

        with use_wiring(model, {s: w[1:2] for s, w in wirings.items()}):
            alone = model(images[:1])
    swapped, _, _ = derived._classify(
        model, loader, lambda idx: {s: w[other[idx]] for s, w in wirings.items()}
    )
    torch.testing.assert_close(swapped[:1].float(), alone, rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def detection_comparison(cache, module_folder):
    comparison = Comparison(
        module_folder("compare"),
        seeds={"classification": (0, 1), "detection": (0, 1)},
        tasks=["detection"],
        opts={"pretrain": TINY_PRETRAINING + ["CLS.EPOCHS", "1"], "detection": TINY_DEMO_DETECTION},
    )
    result = comparison.folder("detection", "pretrain-ddw", 0) / "result.json"
    jobs.pretrain(*comparison.pretrain_args("ddw", 0), str(result))
    return comparison


def test_detection_jobs_train_and_derive_the_frozen_and_shuffled_arms(detection_comparison):
    comparison = detection_comparison
    result = comparison.folder("detection", "ddw", 0) / "result.json"
    jobs.detect(*comparison.detection_args("ddw", 0), str(result))
    trained = json.loads(result.read_text())
    assert {"AP", "AP50", "AP75", "AP-circle", "train_seconds"} <= set(trained)
    outputs = {
        name: comparison.folder("detection", name, 0) / "result.json"
        for name in ("frozen", "shuffled")
    }
    derived.evaluate_detector_arms(
        *comparison.detection_args("ddw", 0), {k: str(v) for k, v in outputs.items()}, seed=0
    )
    for path in outputs.values():
        assert {"AP", "AP50", "AP75"} <= set(json.loads(path.read_text()))


def test_detection_shuffle_gives_each_image_the_recorded_wiring_of_another(detection_comparison):
    from ddw_detectron.engine import DDWTrainer
    from ddw_detectron.layers import collect_wiring

    config, opts = detection_comparison.detection_args("ddw", 0)
    cfg = jobs.detection_cfg(config, opts)
    model = DDWTrainer.build_model(cfg).eval()
    torch.manual_seed(0)
    with torch.no_grad():  # routers that tell images apart, as trained ones do
        for name, p in model.named_parameters():
            if ".routers." in name and name.endswith("fc.weight"):
                p.normal_(std=0.5)
    image = {"image": torch.rand(3, 64, 64) * 255, "height": 64, "width": 64}
    recorder = derived._Wirings(model)
    with torch.no_grad():
        recorder([{**image, "image_id": 1}])
        recorder([{**image, "image": image["image"].flip(1), "image_id": 2}])
        assert not torch.equal(recorder.recorded[1]["res3"], recorder.recorded[2]["res3"])
        derived._Wirings(model, recorder.recorded, {1: 2, 2: 1})([{**image, "image_id": 1}])
    for stage, adjacency in collect_wiring(model).items():
        assert torch.equal(adjacency[0], recorder.recorded[2][stage])
