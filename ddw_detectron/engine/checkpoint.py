"""``DDWCheckpointer``: Detectron2's checkpointer with atomic saves and architecture checks."""

import os

from detectron2.checkpoint import DetectionCheckpointer

from .resume import rng_states

__all__ = ["CheckpointWriteError", "DDWCheckpointer"]


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, ...); the previous one is intact."""


class DDWCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` that

    - writes each checkpoint to a temporary file and renames it into place, and only then
      points ``last_checkpoint`` at it (also written to a temporary file and renamed), so an
      interrupted run never leaves a truncated checkpoint or pointer where ``--resume`` would
      look; a failed write (a full disk) removes the temporary file and stops with
      :class:`CheckpointWriteError`, which names the previous checkpoint, still intact;
    - stores the random generators' states (``rng_states``) for an exact resume;
    - refuses weights whose backbone does not fit the model (tensors of other shapes, or no
      backbone tensor at all matched) with an error that names the file, instead of silently
      skipping them. Head mismatches (another number of classes) are skipped as usual;
    - keeps what the last load left incompatible (``last_incompatible``: missing, unexpected
      and differently shaped keys), for callers that check a hand-off key by key.
    """

    last_incompatible = None

    def save(self, name: str, **kwargs) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        partial = f"{name}.incomplete"
        partial_path = os.path.join(self.save_dir, f"{partial}.pth")
        try:
            super().save(partial, rng_states=rng_states(), **kwargs)
        except OSError as exc:
            if os.path.exists(partial_path):
                os.remove(partial_path)
            previous = self.get_checkpoint_file() if self.has_checkpoint() else None
            raise CheckpointWriteError(
                f"could not write checkpoint {name}.pth in {self.save_dir} ({exc}); "
                + (
                    f"the previous checkpoint {previous} and last_checkpoint are intact: free "
                    "space and "
                    "continue with --resume"
                    if previous
                    else "no earlier checkpoint exists"
                )
            ) from exc
        os.replace(partial_path, os.path.join(self.save_dir, f"{name}.pth"))
        self.tag_last_checkpoint(f"{name}.pth")

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        """Point ``last_checkpoint`` at ``last_filename_basename`` atomically: a kill during the
        write leaves the previous pointer, never an empty file that ``--resume`` cannot read.
        The call fvcore's ``save`` makes for the temporary file is ignored: the pointer moves
        only once the checkpoint has its final name."""
        if last_filename_basename.endswith(".incomplete.pth"):
            return
        path = os.path.join(self.save_dir, "last_checkpoint")
        with open(f"{path}.incomplete", "w") as f:
            f.write(last_filename_basename)
        os.replace(f"{path}.incomplete", path)

    def _load_model(self, checkpoint):
        incompatible = super()._load_model(checkpoint)
        self.last_incompatible = incompatible
        source = getattr(self, "_loading", "the checkpoint")
        wrong = [
            (k, a, b) for k, a, b in incompatible.incorrect_shapes if k.startswith("backbone.")
        ]
        if wrong:
            key, shape_checkpoint, shape_model = wrong[0]
            raise ValueError(
                f"{source} does not match this model's backbone: {len(wrong)} tensors have other "
                f"shapes (e.g. {key}: {tuple(shape_checkpoint)} in the checkpoint, "
                f"{tuple(shape_model)} in the model); it is a checkpoint of another architecture"
            )
        backbone = [
            k for k, _ in self.model.named_parameters() if "backbone." in k and ".routers." not in k
        ]
        missing = set(incompatible.missing_keys)
        unexpected_backbone = [k for k in incompatible.unexpected_keys if "backbone." in k]
        if (
            backbone
            and all(k.replace("module.", "", 1) in missing or k in missing for k in backbone)
            and unexpected_backbone
        ):
            raise ValueError(
                f"{source} does not match this model's backbone: none of its "
                f"{len(unexpected_backbone)} backbone tensors (e.g. {unexpected_backbone[0]}) "
                "exists in "
                "the model; it is a checkpoint of another architecture"
            )
        return incompatible

    def load(self, path, *args, **kwargs):
        self._loading = path
        try:
            return super().load(path, *args, **kwargs)
        finally:
            self._loading = "the checkpoint"
