"""Where the shipped configs are: ``ddw_detectron/model_zoo/configs`` in an installed wheel,
the repository's ``configs/`` in a source checkout."""

from pathlib import Path

__all__ = ["configs_root", "get_config_file"]


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
