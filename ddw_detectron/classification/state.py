"""The checkpoint of a pretraining run (``OUTPUT_DIR/last.pth``): written atomically, refused
when it is of another architecture, and its epoch log kept in step with it."""

import json
import os
from typing import Dict, List, Optional

from torch import nn

from ..checkpoint import load_torch_file
from ..utils.atomic import WriteError, atomic_save, atomic_write_text

__all__ = ["align_log", "architecture", "read_checkpoint", "write_checkpoint"]


def architecture(model: nn.Module) -> Dict[str, List[int]]:
    """Each state-dict key's shape: what a checkpoint must match to be resumed."""
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def write_checkpoint(state: Dict, path: str, epoch: int) -> None:
    """Save ``state`` to ``path`` atomically; a failed write says what is left intact."""
    try:
        atomic_save(state, path)
    except WriteError as exc:
        previous = (
            f"the previous {path} (after epoch {epoch - 1}) is intact: free "
            "space and continue with --resume"
            if epoch > 1
            else "no earlier checkpoint exists"
        )
        raise WriteError(f"{exc}; {previous}") from exc


def read_checkpoint(path: str, model: nn.Module, backbone: str) -> Dict:
    """The checkpoint at ``path``; ValueError naming both when it is of another architecture
    than ``model`` (built by ``backbone``)."""
    state = load_torch_file(path)
    ours = architecture(model)
    if state.get("architecture") != ours:
        differing = [k for k in ours if state.get("architecture", {}).get(k) != ours[k]][:3]
        raise ValueError(
            f"{path} is a checkpoint of another architecture "
            f"({state.get('backbone', 'unknown')}; "
            f"differs at {differing or 'its keys'}) than the config's {backbone}; "
            "cannot resume. Use another OUTPUT_DIR or the matching config."
        )
    return state


def align_log(path: str, last_epoch: int, result: Optional[Dict[str, float]]) -> None:
    """Make the epoch log ``path`` (JSON lines) hold one line per epoch up to ``last_epoch``,
    the checkpoint's: drop later lines, add ``result`` (its epoch's line) if the run was killed
    before writing it."""
    lines: List[Dict] = []
    if os.path.isfile(path):
        with open(path) as f:
            lines = [json.loads(line) for line in f if line.strip()]
    lines = [line for line in lines if line["epoch"] <= last_epoch]
    if result is not None and (not lines or lines[-1]["epoch"] < last_epoch):
        lines.append(result)
    atomic_write_text(path, "".join(json.dumps(line) + "\n" for line in lines))
