"""Every COCO config in both forms: the LazyConfig twin of each YAML config loads through
``model_zoo.get_config`` and builds the same detector (same tensors, same detections)."""

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.modeling import build_model

from ddw_detectron import model_zoo
from ddw_detectron.config import load_config
from tests.helpers import CONFIGS

pytestmark = pytest.mark.long(60)

YAML = sorted(
    str(p.relative_to(CONFIGS))
    for folder in ("COCO-Detection", "COCO-InstanceSegmentation")
    for p in (CONFIGS / folder).glob("*.yaml")
)
# One of each meta-architecture and family, static and dynamic, grouped convolutions.
BUILT = [
    "COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.yaml",
    "COCO-Detection/retinanet_DDW_R_50_FPN_1x.yaml",
    "COCO-InstanceSegmentation/mask_rcnn_DDW_R_50_FPN_1x.yaml",
    "COCO-Detection/faster_rcnn_DDW_MobileNetV2_FPN_1x.yaml",
    "COCO-Detection/retinanet_DDW_RegNetX_4GF_FPN_1x.yaml",
    "COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x.yaml",
]


def test_every_yaml_config_has_its_lazy_twin_and_both_load():
    assert len(YAML) == 24
    for name in YAML:
        lazy = model_zoo.get_config(name.replace(".yaml", ".py"))
        assert set(lazy) == {"model", "dataloader", "optimizer", "lr_multiplier", "train"}
        assert lazy.train.max_iter == model_zoo.get_config(name).SOLVER.MAX_ITER


@pytest.mark.parametrize("name", BUILT)
def test_the_lazy_twin_builds_the_yaml_detector(name):
    every = ["MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "MODEL.RETINANET.SCORE_THRESH_TEST", "0.0"]
    cfg = load_config(str(CONFIGS / name), ["MODEL.DEVICE", "cpu", *every])
    lazy = LazyConfig.load(str(CONFIGS / name.replace(".yaml", ".py")))
    if "roi_heads" in lazy.model:  # every detection scored, in both forms
        lazy.model.roi_heads.box_predictor.test_score_thresh = 0.0
    else:
        lazy.model.test_score_thresh = 0.0
    for node in ("MOBILENETV2", "REGNET", "RESNETS"):
        if cfg.MODEL[node].NORM == "SyncBN":  # SyncBN needs a process group
            cfg.MODEL[node].NORM = "BN"
    if lazy.model.backbone.bottom_up.get("norm") == "SyncBN":
        lazy.model.backbone.bottom_up.norm = "BN"
    torch.manual_seed(0)
    from_yaml = build_model(cfg).eval()
    from_lazy = instantiate(lazy.model).eval()
    state = from_yaml.state_dict()
    assert {k: v.shape for k, v in from_lazy.state_dict().items()} == {
        k: v.shape for k, v in state.items()
    }
    from_lazy.load_state_dict(state)
    image = {"image": torch.rand(3, 96, 128) * 255, "height": 96, "width": 128}
    with torch.no_grad():
        a, b = from_yaml([image])[0]["instances"], from_lazy([image])[0]["instances"]
    assert torch.equal(a.pred_boxes.tensor, b.pred_boxes.tensor)
    assert torch.equal(a.scores, b.scores) and len(a) > 0
