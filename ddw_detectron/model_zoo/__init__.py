"""The shipped configs, like ``detectron2.model_zoo``: they are installed with the package, so
a project that ``pip install``-ed ddw_detectron finds them without a clone.

    from ddw_detectron import model_zoo
    cfg = model_zoo.get_config("COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.yaml")
    lazy = model_zoo.get_config("COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.py")  # LazyConfig
    path = model_zoo.get_config_file("ImageNet/DDW_R_50.yaml")  # for --config-file
"""

from .files import configs_root, get_config_file
from .lazy import lazy_config

__all__ = ["configs_root", "get_config", "get_config_file", "lazy_config"]


def get_config(config_path: str):
    """A shipped config, as Detectron2's ``model_zoo.get_config`` gives it: for a ``.py`` file
    the LazyConfig (``LazyConfig.load``), for a YAML file the ``CfgNode`` with the DDW keys (and
    the ``CLS`` keys of pretraining for classification configs)."""
    path = get_config_file(config_path)
    if path.endswith(".py"):
        from detectron2.config import LazyConfig

        return LazyConfig.load(path)
    from ..checkpoint import is_classification_config
    from ..config import load_config

    if is_classification_config(path):
        from ..classification import add_classification_config

        return load_config(path, extra=[add_classification_config])
    return load_config(path)
