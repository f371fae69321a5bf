"""Config files read safely: plain YAML only (Detectron2's ``merge_from_file`` falls back to an
unsafe loader that runs Python tags), with errors that name the file and the problem: a Python
tag, an empty file, a file that is not a mapping of keys, a ``_BASE_`` loop, a LazyConfig."""

import os
from typing import List

from detectron2.config import CfgNode as CN

__all__ = ["UnsafeConfigError", "check_config_file", "merge_config_file", "read_yaml"]


class UnsafeConfigError(ValueError):
    """A config file that is not plain YAML (a Python tag would run code on loading), or that
    cannot be parsed; the message names the file and the problem."""


def _yaml_problem(config_file: str, exc: Exception) -> UnsafeConfigError:
    import yaml

    tag = getattr(exc, "problem", "") or str(exc)
    if isinstance(exc, yaml.constructor.ConstructorError):
        return UnsafeConfigError(
            f"{config_file} is refused: {tag.strip()} ({getattr(exc, 'problem_mark', '')}). "
            "Configs are plain YAML; a Python tag would run code when the file is loaded."
        )
    return UnsafeConfigError(f"cannot read config {config_file}: {exc}")


def _base_path(config_file: str, base: str) -> str:
    # Detectron2's rule (CfgNode.load_yaml_with_base): relative to the file that names it.
    base = os.path.expanduser(base)
    if not base.startswith(("/", "https://", "http://")):
        base = os.path.normpath(os.path.join(os.path.dirname(config_file), base))
    return base


def _check_tree(config_file: str, chain: List[str]) -> None:
    """Refuse, naming the file, what Detectron2 would turn into a traceback: a LazyConfig
    (``.py``), a missing, empty or non-mapping file, a ``_BASE_`` that leads back to itself."""
    import yaml

    if config_file.endswith(".py"):
        raise UnsafeConfigError(
            f"{config_file} is a LazyConfig (Python), and this tool reads YAML configs: "
            "train LazyConfigs with scripts/lazyconfig_train_net.py"
        )
    if not os.path.isfile(config_file):
        raise UnsafeConfigError(f"config file {config_file} does not exist")
    try:
        with open(config_file) as f:
            content = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise _yaml_problem(config_file, exc) from exc
    if content is None:
        raise UnsafeConfigError(f"config file {config_file} is empty")
    if not isinstance(content, dict):
        raise UnsafeConfigError(
            f"config file {config_file} is a YAML {type(content).__name__}, not a mapping of "
            "config keys"
        )
    base = content.get("_BASE_")
    if base is not None and not isinstance(base, str):
        raise UnsafeConfigError(f"config file {config_file}: _BASE_ must be a path, got {base!r}")
    if base is None or base.startswith(("https://", "http://")):
        return
    path = _base_path(config_file, base)
    seen = [os.path.realpath(p) for p in chain + [config_file]]
    if os.path.realpath(path) in seen:
        loop = " -> ".join(chain + [config_file, path])
        raise UnsafeConfigError(f"config file {config_file} has a _BASE_ loop: {loop}")
    _check_tree(path, chain + [config_file])


def check_config_file(config_file: str) -> None:
    """Raise :class:`UnsafeConfigError` naming the file for a config that is not a chain of
    plain YAML mappings (see :func:`_check_tree`)."""
    _check_tree(config_file, [])


def read_yaml(config_file: str) -> dict:
    """A YAML config with its ``_BASE_`` files merged, loaded safely (no Python tags)."""
    import yaml

    check_config_file(config_file)
    try:
        return CN.load_yaml_with_base(config_file, allow_unsafe=False)
    except yaml.YAMLError as exc:
        raise _yaml_problem(config_file, exc) from exc


def merge_config_file(cfg: CN, config_file: str) -> CN:
    """``cfg.merge_from_file(config_file)`` without Python tags (Detectron2 falls back to an
    unsafe loader by default); raises :class:`UnsafeConfigError` naming the file."""
    import yaml

    check_config_file(config_file)
    try:
        cfg.merge_from_file(config_file, allow_unsafe=False)
    except yaml.YAMLError as exc:
        raise _yaml_problem(config_file, exc) from exc
    return cfg
