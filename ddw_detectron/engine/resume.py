"""What an exact ``--resume`` needs beyond Detectron2's checkpoint: the random number
generators' states, and a training sampler that goes on where the interrupted run stopped."""

import itertools
import random
from typing import Dict, Optional

import numpy as np
import torch
from detectron2.data.samplers import TrainingSampler

__all__ = ["ResumableTrainingSampler", "rng_states", "restore_rng_states"]


class ResumableTrainingSampler(TrainingSampler):
    """Detectron2's ``TrainingSampler`` that can go on where an interrupted run stopped
    (:meth:`resume`, before the first batch is drawn: with ``DATALOADER.NUM_WORKERS 0`` any time
    before training starts, since the stream is read lazily)."""

    def __init__(self, size: int, shuffle: bool = True, seed: Optional[int] = None):
        super().__init__(size, shuffle=shuffle, seed=seed)
        self.start = 0
        self.rng_states: Optional[Dict] = None

    def __iter__(self):
        if self.rng_states is not None:
            restore_rng_states(self.rng_states)
            self.rng_states = None
        yield from itertools.islice(super().__iter__(), self.start, None)

    def resume(self, start: int, states: Optional[Dict]) -> None:
        """Skip the first ``start`` indices, and set the generators to ``states`` when the
        first index is drawn: after the data loader has drawn its own seed, as it did in the
        interrupted run before the checkpoint."""
        self.start = start
        self.rng_states = states


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
