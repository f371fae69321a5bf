"""Shared test helpers: configs for each DDW family."""

from detectron2.config import get_cfg

import ddw_detectron

ALL_STAGES = {
    "resnet": ["res2", "res3", "res4", "res5"],
    "mobilenetv2": ["mb1", "mb2", "mb3", "mb4", "mb5", "mb6", "mb7"],
    "regnet": ["s1", "s2", "s3", "s4"],
}


def set_key(cfg, key, value):
    *path, last = key.split(".")
    node = cfg
    for part in path:
        node = node[part]
    node[last] = value


def make_cfg(family="resnet", dynamic=True, **overrides):
    """A CPU config of a small model of ``family`` with BN (trainable) norms, no freezing."""
    cfg = get_cfg()
    ddw_detectron.add_ddw_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.REGNET.PRESET = "RegNetX-400MF"
    cfg.MODEL.DDW.DYNAMIC_STAGES = ALL_STAGES[family] if dynamic else []
    for key, value in overrides.items():
        set_key(cfg, key, value)
    return cfg
