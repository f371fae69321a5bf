"""The facts a checkpoint's consumer must match: what the weights were trained with beyond
their tensor shapes (the input convention, the stride position, the wiring), written into
every exported and converted checkpoint and checked when it is loaded.

Two configs may build tensors of one shape and still disagree: an RGB network fed BGR images,
the stride of a bottleneck in the 1x1 instead of the 3x3 convolution, BatchNorm statistics
under a GroupNorm model, a wiring learned for other stages. Tensors load, training runs, the
result is wrong. :func:`model_facts` reads these from a config; :func:`mismatches` lists the
disagreements, one line per key with both values.
"""

from typing import Dict, List, Mapping, Optional, Sequence

from ..layers.router import RENAMED_ROUTER_MODES

__all__ = [
    "FACTS_KEY",
    "FactsMismatchError",
    "MSRA_FACTS",
    "TORCHVISION_FACTS",
    "check_facts",
    "consumer_facts",
    "mismatches",
    "model_facts",
]

# The key of the facts in a checkpoint's top-level dict.
FACTS_KEY = "ddw_facts"

# Input conventions of the static weights the converter reads.
TORCHVISION_FACTS = {
    "INPUT.FORMAT": "RGB",
    "MODEL.PIXEL_MEAN": [123.675, 116.28, 103.53],
    "MODEL.PIXEL_STD": [58.395, 57.12, 57.375],
    "MODEL.RESNETS.STRIDE_IN_1X1": False,
}
MSRA_FACTS = {
    "INPUT.FORMAT": "BGR",
    "MODEL.PIXEL_MEAN": [103.53, 116.28, 123.675],
    "MODEL.PIXEL_STD": [1.0, 1.0, 1.0],
    "MODEL.RESNETS.STRIDE_IN_1X1": True,
}
# Norm names of Detectron2's get_norm by the statistics they keep: BatchNorm in any form loads
# into BatchNorm in any form; GroupNorm and LayerNorm keep none.
_NORM_KINDS = {"BN": "batch", "SyncBN": "batch", "FrozenBN": "batch", "naiveSyncBN": "batch"}
_NORM_KINDS.update(nnSyncBN="batch", naiveSyncBN_N="batch", GN="group", LN="layer")


class FactsMismatchError(ValueError):
    """A checkpoint's facts disagree with the config it is loaded into."""


def _norm_kind(norm: str) -> str:
    return _NORM_KINDS.get(norm, norm or "none")


def model_facts(cfg) -> Dict:
    """The facts of the model ``cfg`` builds: family, depth or preset, dynamic stages, router
    shape, input convention, stride position (ResNet), norm kind."""
    from ..modeling.family import family_of

    family = family_of(cfg)
    node = cfg.MODEL[family.config_node]
    ddw = cfg.MODEL.DDW
    facts = {
        "family": family.name,
        "MODEL.DDW.DYNAMIC_STAGES": sorted(ddw.DYNAMIC_STAGES),
        "MODEL.DDW.ROUTER_MODE": _current("MODEL.DDW.ROUTER_MODE", ddw.ROUTER_MODE),
        "MODEL.DDW.ROUTER_HIDDEN_DIM": int(ddw.ROUTER_HIDDEN_DIM),
        "INPUT.FORMAT": cfg.INPUT.FORMAT,
        "MODEL.PIXEL_MEAN": [float(v) for v in cfg.MODEL.PIXEL_MEAN],
        "MODEL.PIXEL_STD": [float(v) for v in cfg.MODEL.PIXEL_STD],
        "norm": _norm_kind(node.NORM),
    }
    if family.name == "resnet":
        resnets = cfg.MODEL.RESNETS
        facts.update(
            {
                "MODEL.RESNETS.DEPTH": int(resnets.DEPTH),
                "MODEL.RESNETS.NUM_GROUPS": int(resnets.NUM_GROUPS),
                "MODEL.RESNETS.WIDTH_PER_GROUP": int(resnets.WIDTH_PER_GROUP),
                "MODEL.RESNETS.STRIDE_IN_1X1": bool(resnets.STRIDE_IN_1X1),
            }
        )
    elif family.name == "regnet":
        facts["MODEL.REGNET.PRESET"] = cfg.MODEL.REGNET.PRESET
    elif family.name == "mobilenetv2":
        facts["MODEL.MOBILENETV2.WIDTH_MULT"] = float(cfg.MODEL.MOBILENETV2.WIDTH_MULT)
    return facts


def consumer_facts(cfg) -> Optional[Dict]:
    """:func:`model_facts` of ``cfg``, or None when its backbone is not a DDW backbone (a
    checkpointer then checks no facts)."""
    try:
        return model_facts(cfg)
    except ValueError:
        return None


def _current(key: str, value):
    """A fact under its current name: weights saved before ``ROUTER_MODE static`` was renamed
    ``shared`` state the old name."""
    return RENAMED_ROUTER_MODES.get(value, value) if key == "MODEL.DDW.ROUTER_MODE" else value


def _differ(a, b) -> bool:
    """Whether two fact values differ (numbers within 1e-3 are equal)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) != len(b) or any(_differ(x, y) for x, y in zip(a, b))
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return abs(float(a) - float(b)) > 1e-3
    return a != b


def mismatches(theirs: Mapping, ours: Mapping, keys: Optional[Sequence[str]] = None) -> List[str]:
    """One line per fact both sides state (or of ``keys``) on which they differ. A static
    checkpoint (no dynamic stages) fits any wiring: its routers start fresh."""
    lines = []
    for key in keys or [k for k in theirs if k in ours]:
        if key not in theirs or key not in ours:
            continue
        if key == "MODEL.DDW.DYNAMIC_STAGES" and not theirs[key]:
            continue
        if key in ("MODEL.DDW.ROUTER_MODE", "MODEL.DDW.ROUTER_HIDDEN_DIM") and not theirs.get(
            "MODEL.DDW.DYNAMIC_STAGES", True
        ):
            continue
        if _differ(_current(key, theirs[key]), _current(key, ours[key])):
            lines.append(f"  {key}: {theirs[key]!r} in the weights, {ours[key]!r} in the config")
    return lines


def check_facts(theirs: Optional[Mapping], ours: Mapping, source: str, hint: str = "") -> None:
    """Raise :class:`FactsMismatchError` listing :func:`mismatches` of ``source``'s facts
    ``theirs`` (nothing to check when None) against the config's ``ours``."""
    if not theirs:
        return
    lines = mismatches(theirs, ours)
    if lines:
        raise FactsMismatchError(
            "\n".join(
                [
                    f"{source} was made for another setting than this config; set the config to "
                    "match the weights (or use weights made for it):",
                    *lines,
                    *([hint] if hint else []),
                ]
            )
        )
