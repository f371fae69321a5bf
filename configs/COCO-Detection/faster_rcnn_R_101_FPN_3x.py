# LazyConfig form of the YAML config of the same name, generated from it.
# Train with scripts/lazyconfig_train_net.py --config-file (this file).
from ddw_detectron.model_zoo import lazy_config

_cfg = lazy_config("COCO-Detection/faster_rcnn_R_101_FPN_3x.yaml")
model, dataloader, optimizer = _cfg["model"], _cfg["dataloader"], _cfg["optimizer"]
lr_multiplier, train = _cfg["lr_multiplier"], _cfg["train"]
