"""Config keys of ddw_detectron (``MODEL.DDW.*``)."""

from detectron2.config import CfgNode as CN


def add_ddw_config(cfg: CN) -> CN:
    """Add the DDW keys to a Detectron2 config in place (idempotent) and return it."""
    if "DDW" in cfg.MODEL:
        return cfg
    cfg.MODEL.DDW = CN()
    return cfg
