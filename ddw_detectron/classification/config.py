"""``CLS.*``: the keys of pretraining (``scripts/pretrain_imagenet.py``); the backbone is
configured by the usual ``MODEL.*`` keys."""

from detectron2.config import CfgNode as CN

__all__ = ["add_classification_config"]


def add_classification_config(cfg: CN) -> CN:
    """Add ``CLS.*`` (pretraining) keys; the backbone is configured by the usual ``MODEL.*``."""
    if "CLS" in cfg:
        return cfg
    cfg.CLS = CN()
    cfg.CLS.DATA_ROOT = "datasets/imagenet"  # ImageFolder layout: train/<class>/*, val/<class>/*
    cfg.CLS.NUM_CLASSES = 1000
    cfg.CLS.EPOCHS = 100
    cfg.CLS.BATCH_SIZE = 64  # per process
    cfg.CLS.BASE_LR = 0.1  # per 256 images; the lr used is BASE_LR * total batch / 256
    # "SGD" (momentum, the classic ImageNet recipe) or "AdamW" (decoupled weight decay, as in
    # current recipes; it trains short schedules from scratch much faster, see the demo config).
    cfg.CLS.OPTIMIZER = "SGD"
    cfg.CLS.MOMENTUM = 0.9  # SGD only
    cfg.CLS.NESTEROV = False  # SGD only
    cfg.CLS.WEIGHT_DECAY = 1e-4  # 4e-5 for MobileNetV2 (its configs set it)
    # Norm weights, biases and router parameters get no weight decay unless this is True.
    cfg.CLS.WEIGHT_DECAY_ALL = False
    cfg.CLS.WARMUP_EPOCHS = 5
    cfg.CLS.WARMUP_FACTOR = 0.1
    cfg.CLS.LABEL_SMOOTHING = 0.1
    cfg.CLS.INPUT_SIZE = 224
    cfg.CLS.RESIZE_SIZE = 256  # val: resize the short side, then center crop INPUT_SIZE
    cfg.CLS.CROP_SCALE_MIN = 0.08  # RandomResizedCrop's smallest area share (ImageNet: 0.08)
    cfg.CLS.HFLIP = True  # random horizontal flips in training
    # Recipe pieces from torchvision, all off by default. AUTO_AUGMENT: "" (none), "autoaugment"
    # (the ImageNet policy), "randaugment" or "trivialaugment"; RANDOM_ERASING: the probability of
    # erasing a rectangle (filled with MODEL.PIXEL_MEAN, so it reads 0 after normalisation).
    cfg.CLS.AUTO_AUGMENT = ""
    cfg.CLS.RANDOM_ERASING = 0.0
    # Per-batch MixUp / CutMix (their Beta distributions' alpha; 0 = off; both > 0: one of them
    # chosen per batch, as torchvision's reference recipe does). Targets become soft labels.
    cfg.CLS.MIXUP_ALPHA = 0.0
    cfg.CLS.CUTMIX_ALPHA = 0.0
    # An exponential moving average of the weights and norm statistics, updated every
    # iteration, evaluated beside the raw weights each epoch; the better of the two at the end
    # is exported for Detectron2. DECAY is per iteration: the average spans ~1 / (1 - DECAY)
    # iterations, so short schedules need a smaller value.
    cfg.CLS.EMA = CN()
    cfg.CLS.EMA.ENABLED = False
    cfg.CLS.EMA.DECAY = 0.9998
    cfg.CLS.CLIP_GRAD_NORM = 0.0  # > 0: clip the gradients' global L2 norm to this value
    cfg.CLS.NUM_WORKERS = 8
    cfg.CLS.PREFETCH_FACTOR = 2  # batches each worker loads ahead (with NUM_WORKERS > 0)
    cfg.CLS.SEED = 0
    cfg.CLS.AMP = True  # used on CUDA only
    cfg.CLS.CHANNELS_LAST = True  # used on CUDA only
    return cfg
