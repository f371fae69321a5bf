"""Faster R-CNN, RetinaNet and Mask R-CNN with each DDW family: one CPU training step and one
inference, through Detectron2's own meta-architectures."""

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage

from ddw_detectron import collect_wiring
from ddw_detectron.modeling import FAMILIES
from tests.helpers import ALL_STAGES, CONFIGS, make_cfg


def detector_cfg(family, arch):
    cfg = make_cfg(family)
    base = "Base-DDW-RetinaNet.yaml" if arch == "retinanet" else "Base-DDW-RCNN-FPN.yaml"
    cfg.merge_from_file(str(CONFIGS / base))
    cfg.MODEL.DDW.DYNAMIC_STAGES = ALL_STAGES[family]
    description = FAMILIES[family]
    features = list(description.fpn_features)[1 if arch == "retinanet" else 0 :]
    cfg.MODEL.BACKBONE.NAME = description.builders["retinanet" if arch == "retinanet" else "fpn"]
    cfg.MODEL.FPN.IN_FEATURES = features
    description.set_out_features(cfg, features)
    cfg.MODEL.MASK_ON = arch == "mask_rcnn"
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    cfg.MODEL.RETINANET.NUM_CLASSES = 3
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 32
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = 64
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 64
    return cfg


def sample(h=96, w=128):
    image = torch.rand(3, h, w) * 255
    instances = Instances((h, w))
    boxes = torch.tensor([[8.0, 8.0, 60.0, 70.0], [50.0, 30.0, 120.0, 90.0]])
    instances.gt_boxes = Boxes(boxes)
    instances.gt_classes = torch.tensor([0, 2])
    masks = torch.zeros(2, h, w, dtype=torch.bool)
    for m, (x0, y0, x1, y1) in zip(masks, boxes.int().tolist()):
        m[y0:y1, x0:x1] = True
    instances.gt_masks = BitMasks(masks)
    return {"image": image, "instances": instances, "height": h, "width": w}


@pytest.mark.parametrize("arch", ["faster_rcnn", "retinanet", "mask_rcnn"])
@pytest.mark.parametrize("family", ["resnet", "mobilenetv2", "regnet"])
def test_one_training_step_and_inference(family, arch):
    torch.manual_seed(0)
    model = build_model(detector_cfg(family, arch))
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    batch = [sample(), sample(80, 112)]
    with EventStorage():
        losses = model(batch)
        expected = {
            "faster_rcnn": {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"},
            "retinanet": {"loss_cls", "loss_box_reg"},
        }.get(arch, {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc", "loss_mask"})
        assert set(losses) == expected
        assert all(torch.isfinite(v) for v in losses.values())
        sum(losses.values()).backward()
    routers = [p for n, p in model.named_parameters() if ".routers." in n]
    assert routers and all(p.grad is not None for p in routers)
    optimizer.step()
    wiring = collect_wiring(model)
    assert set(wiring) == set(ALL_STAGES[family]) & set(wiring) and len(wiring) >= 3
    assert all(a.shape[0] == 2 for a in wiring.values())

    model.eval()
    with torch.no_grad():
        results = model([{"image": sample()["image"], "height": 96, "width": 128}])
    instances = results[0]["instances"]
    assert instances.image_size == (96, 128)
    if arch == "mask_rcnn":
        assert instances.has("pred_masks")
    assert all(a.shape[0] == 1 for a in collect_wiring(model).values())
