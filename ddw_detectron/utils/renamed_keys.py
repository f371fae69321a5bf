"""Config keys renamed since an earlier version, kept loadable for a while: a config (file or
``KEY VALUE`` override) that sets an old key loads, with one warning naming the old and new key,
and the value goes to the new key. The old keys stay in the config as ``None`` placeholders so
that Detectron2's merges accept them; :func:`move_renamed_keys` removes them."""

import warnings
from typing import Dict

from detectron2.config import CfgNode as CN

__all__ = ["RENAMED_KEYS", "add_renamed_keys", "move_renamed_keys", "refuse_unmoved_keys"]

# old key -> new key; the old names go in version 0.3.
RENAMED_KEYS: Dict[str, str] = {
    # "skip" names the unused nodes of MODEL.DDW.SKIP_UNUSED_NODES only.
    "TEST.SKIP_UNREADABLE_IMAGES": "TEST.EXCLUDE_UNREADABLE_IMAGES",
}


def _split(key: str):
    parent, _, leaf = key.rpartition(".")
    return parent, leaf


def _node(cfg: CN, path: str) -> CN:
    for part in path.split("."):
        cfg = cfg[part]
    return cfg


def add_renamed_keys(cfg: CN) -> None:
    """Add each old key as a ``None`` placeholder (in place)."""
    for old in RENAMED_KEYS:
        parent, leaf = _split(old)
        _node(cfg, parent)[leaf] = None


def move_renamed_keys(cfg: CN, source: str = "the config") -> None:
    """Move each old key's value to its new key, with one warning that names both and
    ``source``; then drop the placeholders (in place, before ``cfg.freeze()``)."""
    for old, new in RENAMED_KEYS.items():
        parent, leaf = _split(old)
        node = _node(cfg, parent)
        value = node.pop(leaf, None)
        if value is None:
            continue
        warnings.warn(
            f"{old} is renamed {new} ({source} sets the old name; it goes in version 0.3)",
            FutureWarning,
            stacklevel=2,
        )
        new_parent, new_leaf = _split(new)
        _node(cfg, new_parent)[new_leaf] = value


def refuse_unmoved_keys(cfg: CN) -> None:
    """Raise ValueError naming an old key that still holds a value: a config merged without
    :func:`move_renamed_keys` (``ddw_detectron.config.load_config`` calls it), whose value
    would otherwise be ignored."""
    for old, new in RENAMED_KEYS.items():
        parent, leaf = _split(old)
        if _node(cfg, parent).get(leaf) is not None:
            raise ValueError(
                f"{old} is renamed {new}: set the new key, or load the config with "
                "ddw_detectron.config.load_config, which translates it"
            )
