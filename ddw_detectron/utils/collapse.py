"""Stopping a run whose wiring has cut a stage's output off the image (a collapse)."""

from typing import Dict, Optional

__all__ = ["DEFAULT_PATIENCE", "DEFAULT_SHARE", "CollapseMonitor", "RunCollapsed"]

# MODEL.DDW.COLLAPSE_SHARE / COLLAPSE_PATIENCE (and the LazyConfig trainer's monitor).
DEFAULT_SHARE = 0.5
DEFAULT_PATIENCE = 10


class RunCollapsed(RuntimeError):
    """Raised to stop a run whose wiring has collapsed; the message says what happened."""


class CollapseMonitor:
    """Watches the ``ddw/<stage>/disconnected`` share (:func:`~ddw_detectron.utils.wiring_stats.
    collapse_signals`: images for which the stage's output does not depend on the image) at each
    check, and stops the run once some stage has been disconnected for at least ``share`` of the
    batch in ``patience`` checks in a row: from then on the network predicts from a constant
    for those images, and no gradient of theirs reaches the edges that would reconnect it.

    Args:
        share: in (0, 1]; 0 disables the monitor (``MODEL.DDW.COLLAPSE_SHARE``).
        patience: consecutive checks (``MODEL.DDW.COLLAPSE_PATIENCE``).
    """

    def __init__(self, share: float, patience: int):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"MODEL.DDW.COLLAPSE_SHARE = {share} is invalid: must be in [0, 1]")
        if patience < 1:
            raise ValueError(f"MODEL.DDW.COLLAPSE_PATIENCE = {patience} is invalid: must be >= 1")
        self.share = share
        self.patience = patience
        self.streak = 0

    @classmethod
    def from_config(cls, cfg) -> Optional["CollapseMonitor"]:
        """From ``MODEL.DDW.COLLAPSE_*``; None when disabled or no stage is dynamic."""
        ddw = cfg.MODEL.DDW
        if ddw.COLLAPSE_SHARE == 0 or not ddw.DYNAMIC_STAGES:
            return None
        return cls(ddw.COLLAPSE_SHARE, ddw.COLLAPSE_PATIENCE)

    def check(self, scalars: Dict[str, float], where: str) -> None:
        """``scalars``: the telemetry of the last forward (``{"ddw/<stage>/<key>": value}``);
        ``where``: the iteration, for the message. Raises :class:`RunCollapsed`."""
        worst = {
            key.split("/")[1]: value
            for key, value in scalars.items()
            if key.endswith("/disconnected") and value >= self.share
        }
        self.streak = self.streak + 1 if worst else 0
        if self.streak < self.patience:
            return
        stages = ", ".join(f"{stage} for {100 * value:.0f}%" for stage, value in worst.items())
        raise RunCollapsed(
            f"the run has collapsed at {where}: the output of stage {stages} of the batch's "
            f"images did not depend on the image in {self.patience} checks in a row "
            "(MODEL.DDW.COLLAPSE_SHARE / COLLAPSE_PATIENCE): the stage's wiring dropped every "
            "path through it. Training stopped. With AdamW, a lower router learning rate "
            "(MODEL.DDW.ROUTER_LR_FACTOR 0.1) trained every seed measured (docs/method.md)."
        )
