"""The LazyConfig form of a YAML detection config, generated from it: each COCO config is
described once (its YAML file) and has both forms (``configs/COCO-*/<name>.py`` calls
:func:`lazy_config`).

The meta-architecture, data, optimizer and schedule are Detectron2's own LazyConfig baselines
(``common/models/mask_rcnn_fpn.py``, ``retinanet.py``, ``common/data/coco.py``,
``common/optim.py``, ``common/train.py``) with what the YAML config sets on top of
Detectron2's defaults: the DDW bottom-up backbone (each family's ``lazy`` description), the FPN
inputs, the anchors, the input convention, the datasets, the learning rate and schedule, the
output folder. Whatever else a YAML config changes from Detectron2's defaults is not carried
over; the shipped COCO configs change nothing else (a test builds both forms of six of them and
compares their detections).
"""

from typing import Dict

from detectron2.config import LazyCall as L
from detectron2.model_zoo import get_config as detectron2_config

__all__ = ["lazy_config"]

LAZY_KEYS = ("model", "dataloader", "optimizer", "lr_multiplier", "train")


def lazy_config(yaml_config: str) -> Dict:
    """``{"model", "dataloader", "optimizer", "lr_multiplier", "train"}`` of a shipped YAML
    detection config (relative to ``configs/``) or a YAML file, as LazyConfig nodes."""
    from pathlib import Path

    from ..config import load_config
    from .files import get_config_file

    path = yaml_config if Path(yaml_config).is_file() else get_config_file(yaml_config)
    cfg = load_config(path)
    cfg.MODEL.DEVICE = "cuda"  # load_config falls back to the CPU; train.device decides here
    return {
        "model": _model(cfg),
        "dataloader": _dataloader(cfg),
        "optimizer": _optimizer(cfg),
        "lr_multiplier": _schedule(cfg),
        "train": _train(cfg),
    }


def _model(cfg):
    from ..modeling import family_of

    retinanet = cfg.MODEL.META_ARCHITECTURE == "RetinaNet"
    model = detectron2_config(
        "common/models/retinanet.py" if retinanet else "common/models/mask_rcnn_fpn.py"
    ).model
    model.backbone.bottom_up = family_of(cfg).lazy(cfg)
    # The wiring statistics go out as often as the writers log (train.log_period).
    model.backbone.bottom_up.log_period = "${train.log_period}"
    model.backbone.in_features = list(cfg.MODEL.FPN.IN_FEATURES)
    model.backbone.out_channels = cfg.MODEL.FPN.OUT_CHANNELS
    if retinanet:
        model.backbone.top_block.in_channels = _last_channels(cfg)
        model.backbone.top_block.in_feature = cfg.MODEL.FPN.IN_FEATURES[-1]
        model.num_classes = cfg.MODEL.RETINANET.NUM_CLASSES
    else:
        model.roi_heads.num_classes = cfg.MODEL.ROI_HEADS.NUM_CLASSES
        if not cfg.MODEL.MASK_ON:
            model.roi_heads.update(mask_in_features=None, mask_pooler=None, mask_head=None)
    anchors = model.anchor_generator if retinanet else model.proposal_generator.anchor_generator
    anchors.sizes = [list(map(float, sizes)) for sizes in cfg.MODEL.ANCHOR_GENERATOR.SIZES]
    anchors.aspect_ratios = [list(r) for r in cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS]
    anchors.offset = cfg.MODEL.ANCHOR_GENERATOR.OFFSET
    model.pixel_mean = list(cfg.MODEL.PIXEL_MEAN)
    model.pixel_std = list(cfg.MODEL.PIXEL_STD)
    model.input_format = cfg.INPUT.FORMAT
    return model


def _last_channels(cfg) -> int:
    """Channels of the last FPN input (P6 of RetinaNet is computed from it)."""
    from detectron2.config import instantiate

    from ..modeling import family_of

    backbone = instantiate(family_of(cfg).lazy(cfg))
    return backbone.output_shape()[cfg.MODEL.FPN.IN_FEATURES[-1]].channels


def _dataloader(cfg):
    dataloader = detectron2_config("common/data/coco.py").dataloader
    dataloader.train.dataset.names = list(cfg.DATASETS.TRAIN)
    dataloader.train.mapper.image_format = cfg.INPUT.FORMAT
    dataloader.train.mapper.use_instance_mask = cfg.MODEL.MASK_ON
    dataloader.train.total_batch_size = cfg.SOLVER.IMS_PER_BATCH
    dataloader.test.dataset.names = cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else ""
    from ..compat import has_compiled_ops

    dataloader.evaluator.use_fast_impl = has_compiled_ops()
    return dataloader


def _optimizer(cfg):
    optimizer = detectron2_config("common/optim.py").SGD
    optimizer.lr = cfg.SOLVER.BASE_LR
    optimizer.momentum = cfg.SOLVER.MOMENTUM
    optimizer.weight_decay = cfg.SOLVER.WEIGHT_DECAY
    return optimizer


def _schedule(cfg):
    from detectron2.solver import WarmupParamScheduler
    from fvcore.common.param_scheduler import MultiStepParamScheduler

    solver = cfg.SOLVER
    steps = [s for s in solver.STEPS if s <= solver.MAX_ITER]
    return L(WarmupParamScheduler)(
        scheduler=L(MultiStepParamScheduler)(
            values=[solver.GAMMA**k for k in range(len(steps) + 1)],
            milestones=steps + [solver.MAX_ITER],
        ),
        warmup_length=solver.WARMUP_ITERS / solver.MAX_ITER,
        warmup_method=solver.WARMUP_METHOD,
        warmup_factor=solver.WARMUP_FACTOR,
    )


def _train(cfg):
    train = detectron2_config("common/train.py").train
    train.output_dir = cfg.OUTPUT_DIR
    train.init_checkpoint = cfg.MODEL.WEIGHTS
    train.max_iter = cfg.SOLVER.MAX_ITER
    train.amp.enabled = cfg.SOLVER.AMP.ENABLED
    train.checkpointer.period = cfg.SOLVER.CHECKPOINT_PERIOD
    train.eval_period = cfg.TEST.EVAL_PERIOD
    train.log_period = cfg.MODEL.DDW.LOG_PERIOD
    return train
