# LazyConfig twin of faster_rcnn_DDW_R_18_FPN_shapes.yaml: DDW ResNet-18 FPN Faster R-CNN trained
# from scratch on CPU on the demo dataset.
# python scripts/lazyconfig_train_net.py \
#     --config-file configs/Demo/faster_rcnn_DDW_R_18_FPN_shapes.py
from detectron2.config import LazyCall as L
from detectron2.data import transforms as T
from detectron2.layers import ShapeSpec
from detectron2.model_zoo import get_config
from detectron2.modeling.backbone import BasicStem, ResNet
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

from ddw_detectron.compat import has_compiled_ops
from ddw_detectron.modeling import DDWResNet
from ddw_detectron.modeling.dynamic import dag_stage_factory

model = get_config("common/models/mask_rcnn_fpn.py").model
model.roi_heads.update(mask_in_features=None, mask_pooler=None, mask_head=None)
# The YAML twin's input convention: RGB, torchvision's statistics.
model.pixel_mean = [123.675, 116.28, 103.53]
model.pixel_std = [58.395, 57.12, 57.375]
model.input_format = "RGB"
model.backbone.bottom_up = L(DDWResNet)(
    stem=L(BasicStem)(in_channels=3, out_channels=64, norm="BN"),
    stages=L(ResNet.make_default_stages)(depth=18, norm="BN"),
    out_features=["res2", "res3", "res4", "res5"],
    freeze_at=0,
    dynamic_stages=["res2", "res3", "res4", "res5"],
    stage_factory=L(dag_stage_factory)(threshold=0.1),
)
model.backbone.out_channels = 128
model.proposal_generator.head.in_channels = 128
model.proposal_generator.anchor_generator.sizes = [[16], [32], [64], [128], [256]]
model.proposal_generator.pre_nms_topk = (1000, 500)
model.proposal_generator.post_nms_topk = (500, 200)
model.roi_heads.num_classes = 4
model.roi_heads.batch_size_per_image = 64
model.roi_heads.box_head.input_shape = ShapeSpec(channels=128, height=7, width=7)
model.roi_heads.box_head.fc_dims = [256, 256]
model.roi_heads.box_predictor.input_shape = ShapeSpec(channels=256)

dataloader = get_config("common/data/coco.py").dataloader
dataloader.train.dataset.names = "ddw_shapes_train"
dataloader.train.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=(160,), max_size=160, sample_style="choice"),
    L(T.RandomFlip)(horizontal=True),
]
dataloader.train.mapper.image_format = "RGB"
dataloader.train.total_batch_size = 4
dataloader.train.num_workers = 0
dataloader.test.dataset.names = "ddw_shapes_val"
dataloader.test.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=160, max_size=160)
]
dataloader.test.num_workers = 0
dataloader.evaluator.use_fast_impl = has_compiled_ops()

optimizer = get_config("common/optim.py").SGD
optimizer.lr = 0.01
train = get_config("common/train.py").train
train.init_checkpoint = ""
train.max_iter = 700
train.eval_period = 0
train.checkpointer.period = 200
train.device = "cpu"
train.output_dir = "./output/demo_lazy"
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(
        values=[1.0, 0.1, 0.01], milestones=[550, 650], num_updates=700
    ),
    warmup_length=100 / 700,
    warmup_factor=0.001,
)
