"""``DDWCheckpointer``: Detectron2's checkpointer, safe to point at any file and strict about
what it loads."""

import logging
import os
import re
from typing import Dict, List, Mapping, Optional

from detectron2.checkpoint import DetectionCheckpointer

from ..layers import is_router_parameter
from ..utils.atomic import WriteError, atomic_write_text, write_failure_cause
from ..utils.rng import rng_states
from .facts import FACTS_KEY, check_facts
from .io import load_pickle_file, load_torch_file

__all__ = ["CheckpointWriteError", "DDWCheckpointer", "IncompleteBackboneError"]

logger = logging.getLogger(__name__)


class CheckpointWriteError(WriteError):
    """A checkpoint could not be written (disk full, ...); the previous one is intact."""


class IncompleteBackboneError(ValueError):
    """Weights that leave backbone tensors of the model unloaded."""


# Key patterns of raw (unconverted) static ImageNet state dicts, by their source.
_RAW_SOURCES = {
    r"^(module\.)?(layer\d\.|conv1\.weight|fc\.weight)": "torchvision ResNet",
    r"^(module\.)?features\.\d+\.": "torchvision MobileNetV2",
    r"^(module\.)?trunk_output\.": "torchvision RegNet",
}


def _raw_source(keys) -> Optional[str]:
    for pattern, source in _RAW_SOURCES.items():
        if sum(bool(re.match(pattern, k)) for k in keys) >= 3:
            return source
    return None


def _backbone_keys(model) -> List[str]:
    """The bottom-up backbone's tensors a checkpoint must provide: all but the routers (which
    keep their initialisation when a static checkpoint is loaded)."""
    keys = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    prefix = (
        "backbone.bottom_up."
        if any(k.startswith("backbone.bottom_up.") for k in keys)
        else "backbone."
    )
    return [k for k in keys if k.startswith(prefix) and not is_router_parameter(k)]


class DDWCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` that

    - reads files without running their code (:mod:`.io`: ``.pth`` weights-only, ``.pkl``
      through an unpickler that admits only what model-zoo files hold), with errors that name
      the file;
    - refuses weights that leave any backbone tensor unloaded (missing, or of another shape),
      naming the file, the counts and the likely cause (a raw torchvision file: convert it
      first); routers may be missing (a static checkpoint: they start fresh); head mismatches
      (another number of classes) are skipped as Detectron2 does;
    - with ``facts`` (:func:`~ddw_detectron.checkpoint.facts.model_facts` of the config),
      checks them against the facts a checkpoint carries (input convention, stride position,
      wiring, ...) and writes them into every checkpoint it saves;
    - writes each checkpoint to a temporary file and renames it into place, and only then
      points ``last_checkpoint`` at it, so an interrupted run never leaves a truncated
      checkpoint or pointer where ``--resume`` would look; a failed write (a full disk) removes
      the temporary file and stops with :class:`CheckpointWriteError`, which names the previous
      checkpoint, still intact;
    - stores the random generators' states (``rng_states``) for an exact resume;
    - keeps what the last load left incompatible (``last_incompatible``).
    """

    last_incompatible = None

    def __init__(self, model, save_dir: str = "", *, facts: Optional[Mapping] = None, **kwargs):
        super().__init__(model, save_dir, **kwargs)
        self.facts = dict(facts) if facts is not None else None
        self._loading = "the checkpoint"

    # --- saving --------------------------------------------------------------------------
    def save(self, name: str, **kwargs) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        if self.facts is not None:
            kwargs[FACTS_KEY] = self.facts
        partial = f"{name}.incomplete"
        partial_path = os.path.join(self.save_dir, f"{partial}.pth")
        try:
            super().save(partial, rng_states=rng_states(), **kwargs)
            os.replace(partial_path, os.path.join(self.save_dir, f"{name}.pth"))
        except (OSError, RuntimeError) as exc:
            cause = write_failure_cause(exc, partial_path)
            if os.path.exists(partial_path):
                os.remove(partial_path)
            raise CheckpointWriteError(self._write_failure(name, cause)) from exc
        self.tag_last_checkpoint(f"{name}.pth")

    def _write_failure(self, name: str, cause: str) -> str:
        previous = self.get_checkpoint_file() if self.has_checkpoint() else None
        state = (
            f"the previous checkpoint {previous} and last_checkpoint are intact: free space and "
            "continue with --resume"
            if previous
            else "no earlier checkpoint exists"
        )
        return f"could not write checkpoint {name}.pth in {self.save_dir} ({cause}); {state}"

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        """Point ``last_checkpoint`` at ``last_filename_basename`` atomically: a kill during the
        write leaves the previous pointer, never an empty file that ``--resume`` cannot read.
        The call fvcore's ``save`` makes for the temporary file is ignored: the pointer moves
        only once the checkpoint has its final name."""
        if last_filename_basename.endswith(".incomplete.pth"):
            return
        atomic_write_text(os.path.join(self.save_dir, "last_checkpoint"), last_filename_basename)

    # --- loading -------------------------------------------------------------------------
    def load(self, path, *args, **kwargs):
        self._loading = path
        try:
            return super().load(path, *args, **kwargs)
        finally:
            self._loading = "the checkpoint"

    def _load_file(self, filename: str) -> Dict:
        if filename.endswith(".pkl"):
            data = load_pickle_file(filename)
            if not isinstance(data, dict):
                raise IncompleteBackboneError(
                    f"{filename} is not a Detectron2 checkpoint (it holds a {type(data).__name__})"
                )
            if "model" in data and "__author__" in data:
                return data
            blobs = data.get("blobs", data)  # Caffe2 / MSRA model-zoo names, converted by name
            weights = {k: v for k, v in blobs.items() if not k.endswith("_momentum")}
            return {"model": weights, "__author__": "Caffe2", "matching_heuristics": True}
        loaded = load_torch_file(filename)
        if not isinstance(loaded, dict):
            raise IncompleteBackboneError(
                f"{filename} is not a checkpoint (it holds a {type(loaded).__name__})"
            )
        return loaded if "model" in loaded else {"model": loaded}

    def _load_model(self, checkpoint):
        if self.facts is not None:
            if not checkpoint.get(FACTS_KEY):
                logger.warning(
                    f"{self._loading} carries no facts record (the input convention, stride "
                    "position and wiring it was made with): that they match this config cannot "
                    "be checked"
                )
            check_facts(checkpoint.get(FACTS_KEY), self.facts, str(self._loading))
        keys = list(checkpoint["model"])
        incompatible = super()._load_model(checkpoint)
        self.last_incompatible = incompatible
        self._check_backbone(incompatible, keys)
        self._warn_if_random_routers(incompatible)
        return incompatible

    def _warn_if_random_routers(self, incompatible) -> None:
        """Weights without routers into a model whose routers start at random: the pretrained
        network would run with a random wiring from the first step."""
        missing = {k for k in incompatible.missing_keys if is_router_parameter(k)}
        random = [
            name
            for name, p in self.model.named_parameters()
            if name in missing and name.endswith("fc.weight") and bool(p.detach().ne(0).any())
        ]
        if random:
            logger.warning(
                f"{self._loading} has no router weights and the model's {len(random)} routers "
                "start at random (MODEL.DDW.ROUTER_INIT_CHAIN 0): the loaded network runs with "
                "a random wiring, not the one it was trained with. For the start near the base "
                "network set MODEL.DDW.ROUTER_INIT_CHAIN 0.99 (docs/training.md)"
            )

    def _check_backbone(self, incompatible, checkpoint_keys) -> None:
        """Raise :class:`IncompleteBackboneError` unless every backbone tensor loaded."""
        required = _backbone_keys(self.model)
        missing = set(incompatible.missing_keys)
        wrong = {k: (a, b) for k, a, b in incompatible.incorrect_shapes}
        unloaded = [k for k in required if k in missing or k in wrong]
        if not unloaded:
            return
        example = unloaded[0]
        if example in wrong:
            shape_checkpoint, shape_model = wrong[example]
            example += f" ({tuple(shape_checkpoint)} in the file, {tuple(shape_model)} here)"
        raw = _raw_source(checkpoint_keys)
        cause = (
            f"it is a raw {raw} state dict: convert it with scripts/convert_pretrained.py "
            "--source torchvision --config-file <this config> first"
            if raw
            else "it is a checkpoint of another architecture (depth, width, family) than the "
            "config's"
        )
        raise IncompleteBackboneError(
            f"{self._loading} leaves {len(unloaded)} of the model's {len(required)} backbone "
            f"tensors unloaded ({len(wrong)} of another shape; e.g. {example}): {cause}"
        )
