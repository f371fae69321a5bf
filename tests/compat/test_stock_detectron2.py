"""Detectron2's own model-zoo Faster R-CNN trains and infers on CPU in this environment."""

import torch
from detectron2 import model_zoo
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage


def test_model_zoo_faster_rcnn_trains_one_step_and_infers():
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    torch.manual_seed(0)
    model = build_model(cfg)
    image = torch.rand(3, 128, 160) * 255
    instances = Instances((128, 160))
    instances.gt_boxes = Boxes(torch.tensor([[10.0, 10.0, 60.0, 80.0], [70.0, 40.0, 150.0, 120.0]]))
    instances.gt_classes = torch.tensor([3, 7])
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    with EventStorage():
        losses = model([{"image": image, "instances": instances}])
        assert set(losses) == {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"}
        assert all(torch.isfinite(v) for v in losses.values())
        sum(losses.values()).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        (result,) = model([{"image": image, "height": 128, "width": 160}])
    assert result["instances"].image_size == (128, 160)
    assert result["instances"].pred_boxes.tensor.shape[1] == 4
