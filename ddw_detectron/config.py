"""The config of ddw_detectron: ``add_ddw_config`` adds every key the package reads, each from
the package that reads it (Detectron2's pattern of ``add_*_config`` functions), and
``load_config`` merges a config file safely (plain YAML only).

- ``MODEL.DDW.*``, the dynamic stages: :mod:`ddw_detectron.modeling.stage_config`;
- ``MODEL.<family>.*`` of the families Detectron2 has no keys for (``MOBILENETV2``, ``REGNET``):
  each family's module (``BackboneFamily.add_config``); ResNet and ResNeXt use Detectron2's own
  ``MODEL.RESNETS.*`` unchanged;
- ``DATALOADER.MAX_UNREADABLE_IMAGE_SHARE``, ``TEST.EXCLUDE_UNREADABLE_IMAGES``:
  :mod:`ddw_detectron.data.unreadable`;
- ``MODEL.COMPILE.*``: :mod:`ddw_detectron.engine.compile`;
- ``CLS.*`` (pretraining only): :func:`ddw_detectron.classification.add_classification_config`;
- renamed keys, still loadable with a warning: :mod:`ddw_detectron.utils.renamed_keys`.
"""

from detectron2.config import CfgNode as CN

from .data.unreadable import add_data_config
from .engine.compile import add_compile_config
from .modeling import FAMILIES
from .modeling.stage_config import ConfigValueError, add_stage_config
from .utils.renamed_keys import add_renamed_keys, move_renamed_keys
from .utils.yaml_files import UnsafeConfigError, merge_config_file, read_yaml

__all__ = [
    "ConfigValueError",
    "UnsafeConfigError",
    "add_ddw_config",
    "load_config",
    "merge_config_file",
    "read_yaml",
]


def add_ddw_config(cfg: CN) -> CN:
    """Add the keys of ddw_detectron to a Detectron2 config in place (idempotent), return it."""
    if "DDW" in cfg.MODEL:
        return cfg
    add_stage_config(cfg)
    add_data_config(cfg)
    add_compile_config(cfg)
    for family in FAMILIES.values():
        if family.add_config is not None:
            family.add_config(cfg)
    add_renamed_keys(cfg)
    return cfg


def load_config(config_file: str, opts=(), extra=()) -> CN:
    """Detectron2's config with the DDW keys (and those added by the ``extra`` functions),
    merged with ``config_file`` (plain YAML only) and ``KEY VALUE`` overrides, renamed keys
    moved to their new names; ``MODEL.DEVICE`` falls back to the CPU when CUDA is not
    available."""
    import torch
    from detectron2.config import get_cfg

    cfg = get_cfg()
    add_ddw_config(cfg)
    for add in extra:
        add(cfg)
    merge_config_file(cfg, config_file)
    cfg.merge_from_list(list(opts))
    move_renamed_keys(cfg, f"{config_file} or its overrides")
    if not torch.cuda.is_available() and cfg.MODEL.DEVICE.startswith("cuda"):
        cfg.MODEL.DEVICE = "cpu"
    return cfg
