"""The arms of the comparison: the models each task trains, those it derives from a trained
DDW model without retraining, and the paired differences it reports."""

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

__all__ = ["Arm", "ARMS", "CONTRASTS", "PRETRAINING", "TASKS", "arm"]

STATIC = ("MODEL.DDW.DYNAMIC_STAGES", "[]")
STATIC_DAG = ("MODEL.DDW.ROUTER_MODE", "shared")
NEAR_CHAIN_INIT = ("MODEL.DDW.ROUTER_INIT_CHAIN", "0.99", "MODEL.DDW.ROUTER_INIT_OTHER", "0.05")
# From scratch the near-chain start needs the threshold warm-up (docs/method.md), here over
# ddw_mixed's learning-rate warm-up: 1 epoch, 20,000 images at batch 128.
THRESHOLD_WARMUP = ("MODEL.DDW.THRESHOLD_WARMUP_ITERS", "156")
TRAINED_ROUTERS = ("MODEL.DDW.ROUTER_LR_FACTOR", "1.0")
FIXED_ROUTERS = ("MODEL.DDW.ROUTER_LR_FACTOR", "0.0")


@dataclass(frozen=True)
class Arm:
    """``name`` (its folder), ``label`` (its row), the config overrides ``opts`` of a trained
    arm, or ``of``: the trained arm whose model an evaluated-only arm changes."""

    name: str
    label: str
    opts: Tuple[str, ...] = ()
    of: Optional[str] = None


FROZEN = Arm("frozen", "DDW, frozen to its mean wiring (not retrained)", of="ddw")
SHUFFLED = Arm("shuffled", "DDW, each image given another image's wiring", of="ddw")

TASKS = ("classification", "detection")
ARMS: Dict[str, Tuple[Arm, ...]] = {
    "classification": (
        Arm("static", "static chain (the base network)", STATIC),
        Arm("static_dag", "learned static DAG", STATIC_DAG),
        Arm("ddw", "DDW (per-image wiring)"),
        Arm(
            "ddw_chain_init",
            "DDW, routers started near the chain, threshold warm-up",
            NEAR_CHAIN_INIT + THRESHOLD_WARMUP,
        ),
        FROZEN,
        SHUFFLED,
    ),
    "detection": (
        Arm("static", "static chain (the base network)", STATIC),
        Arm("static_dag", "learned static DAG", STATIC_DAG + TRAINED_ROUTERS),
        Arm("ddw", "DDW, routers trained in detection", TRAINED_ROUTERS),
        Arm("ddw_fixed_routers", "DDW, routers kept from pretraining", FIXED_ROUTERS),
        FROZEN,
        SHUFFLED,
    ),
}
# Detection arm -> the pretraining arm (of the classification set cut from the shapes) it
# starts from; the two DDW detection arms share one pretraining.
PRETRAINING = {
    "static": "static",
    "static_dag": "static_dag",
    "ddw": "ddw",
    "ddw_fixed_routers": "ddw",
}
# Paired differences (a - b) each task reports, in order.
CONTRASTS: Dict[str, Tuple[Tuple[str, str], ...]] = {
    "classification": (
        ("ddw", "static_dag"),
        ("ddw", "static"),
        ("static_dag", "static"),
        ("shuffled", "ddw"),
        ("frozen", "ddw"),
        ("ddw_chain_init", "ddw"),
    ),
    "detection": (
        ("ddw", "static_dag"),
        ("ddw", "static"),
        ("static_dag", "static"),
        ("ddw", "ddw_fixed_routers"),
        ("shuffled", "ddw"),
        ("frozen", "ddw"),
    ),
}


def arm(task: str, name: str) -> Arm:
    """The arm ``name`` of ``task``; raises ValueError naming the arms."""
    for candidate in ARMS[task]:
        if candidate.name == name:
            return candidate
    raise ValueError(f"{task} has no arm {name!r}; its arms are {[a.name for a in ARMS[task]]}")
