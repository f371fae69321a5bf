"""The shipped configs, like ``detectron2.model_zoo``: they are installed with the package, so
a project that ``pip install``-ed ddw_detectron finds them without a clone.

    from ddw_detectron import model_zoo
    cfg = model_zoo.get_config("COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.yaml")
    lazy = model_zoo.get_config("COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.py")  # LazyConfig
    path = model_zoo.get_config_file("ImageNet/DDW_R_50.yaml")  # for --config-file
"""

from pathlib import Path

from .lazy import lazy_config

__all__ = ["configs_root", "get_config", "get_config_file", "lazy_config"]


def configs_root() -> Path:
    """The folder of the configs: ``ddw_detectron/model_zoo/configs`` in an installed wheel,
    the repository's ``configs/`` in a source checkout (editable install)."""
    here = Path(__file__).resolve().parent
    for root in (here / "configs", here.parents[1] / "configs"):
        if root.is_dir():
            return root
    raise FileNotFoundError(
        f"no configs found next to {here}: the installation of ddw_detectron is incomplete"
    )


def get_config_file(config_path: str) -> str:
    """The file of a shipped config, given relative to ``configs/``
    (``"COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.yaml"``); ``_BASE_`` files resolve beside
    it. Raises FileNotFoundError naming the config and a few that exist."""
    root = configs_root()
    path = root / config_path
    if not path.is_file():
        known = sorted(
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.suffix in (".yaml", ".py") and not p.name.startswith(("Base", "_"))
        )
        raise FileNotFoundError(
            f"{config_path!r} is not a ddw_detectron config; configs are e.g. {known[:4]} "
            f"({len(known)} in {root})"
        )
    return str(path)


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
