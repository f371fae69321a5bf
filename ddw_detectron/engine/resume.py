"""What an exact ``--resume`` needs beyond Detectron2's checkpoint: the random number
generators' states, and a training sampler that goes on where the interrupted run stopped."""

import itertools
from typing import Dict, Optional

from detectron2.data.samplers import TrainingSampler

from ..utils.rng import restore_rng_states, rng_states

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
        """Start after the first ``start`` indices, and set the generators to ``states`` when the
        first index is drawn: after the data loader has drawn its own seed, as it did in the
        interrupted run before the checkpoint."""
        self.start = start
        self.rng_states = states
