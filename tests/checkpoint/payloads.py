"""Planted files: checkpoints and configs that would run code when loaded unsafely (each writes
a marker file), and broken checkpoints."""

import os
import pickle
from pathlib import Path

import numpy as np


class Payload:
    """Unpickling this calls ``os.system('touch <marker>')``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def payload_pkl(path: Path, marker: Path) -> Path:
    """A model-zoo-looking ``.pkl`` whose weights hold the payload."""
    with open(path, "wb") as f:
        pickle.dump({"model": {"stem.conv1.weight": Payload(marker)}, "__author__": "x"}, f)
    return path


def payload_pth(path: Path, marker: Path) -> Path:
    """A ``torch.save`` file holding the payload (beside real-looking weights)."""
    import torch

    torch.save({"model": {"w": torch.zeros(1)}, "extra": Payload(marker)}, path)
    return path


def payload_yaml(path: Path, marker: Path, base: str = "") -> Path:
    """A config whose only key runs the payload through a Python tag."""
    text = f'_BASE_: "{base}"\n' if base else ""
    text += f'OUTPUT_DIR: !!python/object/apply:os.system ["touch {marker}"]\n'
    path.write_text(text)
    return path


def model_zoo_pkl(path: Path) -> Path:
    """A plain Detectron2-format ``.pkl``: numpy arrays in dicts."""
    weights = {"stem.conv1.weight": np.ones((2, 3), dtype=np.float32)}
    with open(path, "wb") as f:
        pickle.dump({"model": weights, "__author__": "test", "matching_heuristics": True}, f)
    return path
