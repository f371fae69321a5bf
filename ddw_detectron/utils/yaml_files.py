"""Config files read safely: plain YAML only (Detectron2's ``merge_from_file`` falls back to an
unsafe loader that runs Python tags), with errors that name the file and the tag."""

from detectron2.config import CfgNode as CN

__all__ = ["UnsafeConfigError", "merge_config_file", "read_yaml"]


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


def read_yaml(config_file: str) -> dict:
    """A YAML config with its ``_BASE_`` files merged, loaded safely (no Python tags)."""
    import yaml

    try:
        return CN.load_yaml_with_base(config_file, allow_unsafe=False)
    except yaml.YAMLError as exc:
        raise _yaml_problem(config_file, exc) from exc


def merge_config_file(cfg: CN, config_file: str) -> CN:
    """``cfg.merge_from_file(config_file)`` without Python tags (Detectron2 falls back to an
    unsafe loader by default); raises :class:`UnsafeConfigError` naming the file."""
    import yaml

    try:
        cfg.merge_from_file(config_file, allow_unsafe=False)
    except yaml.YAMLError as exc:
        raise _yaml_problem(config_file, exc) from exc
    return cfg
