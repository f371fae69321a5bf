# LazyConfig: Faster R-CNN with a DDW ResNet-50 FPN, Detectron2's 1x schedule.
# Train with:
#   python scripts/lazyconfig_train_net.py \
#       --config-file configs/COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.py
from detectron2.config import LazyCall as L
from detectron2.model_zoo import get_config
from detectron2.modeling.backbone import BasicStem, ResNet

from ddw_detectron.compat import has_compiled_ops
from ddw_detectron.modeling import DDWResNet
from ddw_detectron.modeling.dynamic import dag_stage_factory

model = get_config("common/models/mask_rcnn_fpn.py").model
model.roi_heads.update(mask_in_features=None, mask_pooler=None, mask_head=None)  # no mask branch
model.backbone.bottom_up = L(DDWResNet)(
    stem=L(BasicStem)(in_channels=3, out_channels=64, norm="FrozenBN"),
    stages=L(ResNet.make_default_stages)(depth=50, stride_in_1x1=True, norm="FrozenBN"),
    out_features=["res2", "res3", "res4", "res5"],
    freeze_at=2,
    dynamic_stages=["res2", "res3", "res4", "res5"],
    stage_factory=L(dag_stage_factory)(threshold=0.1, gate="ste"),
)

dataloader = get_config("common/data/coco.py").dataloader
dataloader.evaluator.use_fast_impl = has_compiled_ops()
optimizer = get_config("common/optim.py").SGD
lr_multiplier = get_config("common/coco_schedule.py").lr_multiplier_1x
train = get_config("common/train.py").train
# ImageNet weights converted by scripts/convert_pretrained.py; left for the user.
train.init_checkpoint = ""
