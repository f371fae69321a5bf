"""The global random generators' states, saved in checkpoints for an exact resume."""

import random
from typing import Dict, Optional

import numpy as np
import torch

__all__ = ["rng_states", "restore_rng_states"]


def rng_states() -> Dict:
    """The states of Python's, NumPy's and PyTorch's (CPU and CUDA) global generators, in
    types that ``torch.load(weights_only=True)`` reads (tensors, tuples, numbers)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    numpy_state = (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached)
    states = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: Optional[Dict]) -> None:
    """Set the generators back to :func:`rng_states` output (nothing for None)."""
    if not states:
        return
    random.setstate(states["python"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
