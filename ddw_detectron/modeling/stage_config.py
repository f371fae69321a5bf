"""``MODEL.DDW.*``: the keys of the dynamic stages (their defaults are
:data:`~ddw_detectron.layers.dag_stage.STAGE_DEFAULTS`, those of ``DAGStage``) and their
checks."""

from detectron2.config import CfgNode as CN

from ..layers import GATES, ROUTER_MODES, resolve_router_mode
from ..layers.aggregate import KERNELS
from ..layers.dag_stage import STAGE_DEFAULTS
from ..layers.triton_support import interpreting
from ..utils.collapse import DEFAULT_PATIENCE, DEFAULT_SHARE
from ..utils.renamed_keys import refuse_unmoved_keys

__all__ = [
    "LOG_PERIOD",
    "NEAR_STATIC_INIT",
    "STAGE_DEFAULTS",
    "ConfigValueError",
    "add_stage_config",
    "check_ddw_config",
    "check_kernel",
    "check_dynamic_stages",
]

# Every LOG_PERIOD training iterations a backbone logs its wiring statistics.
LOG_PERIOD = 20
# ROUTER_INIT_CHAIN / ROUTER_INIT_OTHER of the start near the base network (fine-tuning).
NEAR_STATIC_INIT = (0.99, 0.05)


class ConfigValueError(ValueError):
    """A config key has a value it cannot take; the message names the key and what it allows."""


def add_stage_config(cfg: CN) -> None:
    """Add ``MODEL.DDW.*`` with the method's defaults (in place)."""
    cfg.MODEL.DDW = CN()
    # Names of the stages that become dynamic DAGs (ResNet: res2..res5, MobileNetV2: mb1..mb7,
    # RegNet: s1..s4). [] keeps the static base architecture: the baseline of every comparison.
    cfg.MODEL.DDW.DYNAMIC_STAGES = []
    # tau: an edge whose weight is <= THRESHOLD is dropped for that image. In [0, 1).
    cfg.MODEL.DDW.THRESHOLD = STAGE_DEFAULTS["threshold"]
    # > 0: in training the threshold rises linearly from 0 to THRESHOLD over the first this many
    # iterations, so no edge is dropped while the network is random (a deviation: docs/method.md).
    cfg.MODEL.DDW.THRESHOLD_WARMUP_ITERS = 0
    # "ste": training forward uses the thresholded weights, backward passes through the mask, so
    # a dropped edge can come back. "soft": no threshold in training. Inference always thresholds.
    cfg.MODEL.DDW.GATE = STAGE_DEFAULTS["gate"]
    # 0: a router is GAP -> FC -> sigmoid; > 0: GAP -> FC(hidden) -> ReLU -> FC -> sigmoid.
    cfg.MODEL.DDW.ROUTER_HIDDEN_DIM = STAGE_DEFAULTS["router_hidden_dim"]
    # "dynamic": every router reads its node's output, so each image gets its own wiring (the
    # method). "shared" (formerly "static"): one learned weight per edge shared by every image,
    # through the same gate, threshold and buffer: a learned static DAG (the control).
    cfg.MODEL.DDW.ROUTER_MODE = STAGE_DEFAULTS["router_mode"]
    # The routers' start. 0: PyTorch's random init (the method's, from scratch). > 0: every chain
    # edge i -> i+1 starts at ROUTER_INIT_CHAIN and every other edge at ROUTER_INIT_OTHER for every
    # image; 0.99/0.05 computes the static base, for fine-tuning static ImageNet weights (COCO
    # configs). From scratch, pair it with THRESHOLD_WARMUP_ITERS (docs/method.md).
    cfg.MODEL.DDW.ROUTER_INIT_CHAIN = 0.0
    cfg.MODEL.DDW.ROUTER_INIT_OTHER = NEAR_STATIC_INIT[1]
    # A sample for which every incoming edge of a node falls under THRESHOLD keeps that node's
    # strongest edge, so no stage loses its last path (a deviation: docs/method.md says why).
    cfg.MODEL.DDW.KEEP_STRONGEST_INPUT = STAGE_DEFAULTS["keep_strongest_input"]
    # A run stops with an error saying it collapsed once some stage's output has not depended on
    # the image for at least COLLAPSE_SHARE of a batch's images at COLLAPSE_PATIENCE wiring logs
    # in a row (every LOG_PERIOD iterations). 0 never stops.
    cfg.MODEL.DDW.COLLAPSE_SHARE = DEFAULT_SHARE
    cfg.MODEL.DDW.COLLAPSE_PATIENCE = DEFAULT_PATIENCE
    # > 0 adds loss_ddw_sparsity = weight * sum over stages of the mean L1 of edge weights.
    cfg.MODEL.DDW.SPARSITY_LOSS_WEIGHT = 0.0
    # True: buffered aggregation, the aggregated node inputs recomputed in backward (saves about
    # one feature map per node); False: plain autograd sums. Same values either way.
    cfg.MODEL.DDW.MEMORY_EFFICIENT = STAGE_DEFAULTS["memory_efficient"]
    # How the aggregation runs: "eager" (ATen ops), "triton" (fused kernels, CUDA) or "auto" (by
    # device, as measured: docs/cost.md). Same values up to rounding.
    cfg.MODEL.DDW.AGGREGATION_KERNEL = STAGE_DEFAULTS["aggregation_kernel"]
    # At inference with batch size 1, a node that receives no kept edge gets an all-zero input;
    # its output then does not depend on the image and comes from a cache. Exact.
    cfg.MODEL.DDW.SKIP_UNUSED_NODES = STAGE_DEFAULTS["skip_unused_nodes"]
    # Learning rate of router parameters over the base one, in both trainers. 1: the paper's
    # single rate; 0 keeps a pretrained wiring; > 1 helps SGD move routers (tiny gradients near
    # 0.99/0.05); 0.1 keeps AdamW from driving whole stages under THRESHOLD (docs/method.md).
    cfg.MODEL.DDW.ROUTER_LR_FACTOR = 1.0
    # The backbone puts its wiring statistics (ddw/<stage>/*) into the active EventStorage every
    # LOG_PERIOD training iterations (any Detectron2 trainer), as the writers log the losses.
    cfg.MODEL.DDW.LOG_PERIOD = LOG_PERIOD


def _fail(key: str, value, allowed: str) -> None:
    raise ConfigValueError(f"{key} = {value!r} is invalid: {allowed}")


def check_dynamic_stages(dynamic_stages, stage_names) -> None:
    """Raise ValueError unless every name in ``dynamic_stages`` (``MODEL.DDW.DYNAMIC_STAGES``, or
    a backbone class's ``dynamic_stages`` argument) is one of ``stage_names``, at most once."""
    unknown = [s for s in dynamic_stages if s not in stage_names]
    if unknown or len(set(dynamic_stages)) != len(dynamic_stages):
        _fail(
            "MODEL.DDW.DYNAMIC_STAGES",
            list(dynamic_stages),
            f"allowed stage names of this backbone are {list(stage_names)}, each at most once",
        )


def check_kernel(cfg: CN) -> None:
    """Validate ``MODEL.DDW.AGGREGATION_KERNEL`` against ``MODEL.DEVICE``."""
    kernel = cfg.MODEL.DDW.AGGREGATION_KERNEL
    if kernel not in KERNELS:
        _fail("MODEL.DDW.AGGREGATION_KERNEL", kernel, f"allowed values are {list(KERNELS)}")
    device = str(cfg.MODEL.DEVICE)
    if kernel == "triton" and not device.startswith("cuda") and not interpreting():
        _fail(
            "MODEL.DDW.AGGREGATION_KERNEL",
            kernel,
            f"the Triton kernels run on CUDA, and MODEL.DEVICE is {device!r}",
        )


def check_ddw_config(cfg: CN, stage_names) -> None:
    """Validate ``MODEL.DDW.*`` for a backbone with the given stage names; raise ValueError."""
    if "DDW" not in cfg.MODEL:
        raise ValueError(
            "the config has no MODEL.DDW keys: call ddw_detectron.add_ddw_config(cfg) before "
            "merging a DDW config file"
        )
    refuse_unmoved_keys(cfg)
    ddw = cfg.MODEL.DDW
    check_dynamic_stages(ddw.DYNAMIC_STAGES, stage_names)
    if not 0.0 <= ddw.THRESHOLD < 1.0:
        _fail("MODEL.DDW.THRESHOLD", ddw.THRESHOLD, "must be in [0, 1)")
    if ddw.THRESHOLD_WARMUP_ITERS < 0:
        _fail("MODEL.DDW.THRESHOLD_WARMUP_ITERS", ddw.THRESHOLD_WARMUP_ITERS, "must be >= 0")
    if resolve_router_mode(ddw.ROUTER_MODE) not in ROUTER_MODES:
        _fail("MODEL.DDW.ROUTER_MODE", ddw.ROUTER_MODE, f"allowed values are {list(ROUTER_MODES)}")
    check_kernel(cfg)
    if ddw.GATE not in GATES:
        _fail("MODEL.DDW.GATE", ddw.GATE, f"allowed values are {list(GATES)}")
    if ddw.ROUTER_HIDDEN_DIM < 0:
        _fail("MODEL.DDW.ROUTER_HIDDEN_DIM", ddw.ROUTER_HIDDEN_DIM, "must be >= 0")
    if not (ddw.ROUTER_INIT_CHAIN == 0 or 0.0 < ddw.ROUTER_INIT_CHAIN < 1.0):
        _fail(
            "MODEL.DDW.ROUTER_INIT_CHAIN",
            ddw.ROUTER_INIT_CHAIN,
            "must be in (0, 1), or 0 for the plain random initialisation",
        )
    if not 0.0 < ddw.ROUTER_INIT_OTHER < 1.0:
        _fail("MODEL.DDW.ROUTER_INIT_OTHER", ddw.ROUTER_INIT_OTHER, "must be in (0, 1)")
    if ddw.ROUTER_LR_FACTOR < 0:
        _fail("MODEL.DDW.ROUTER_LR_FACTOR", ddw.ROUTER_LR_FACTOR, "must be >= 0")
    if not 0.0 <= ddw.COLLAPSE_SHARE <= 1.0:
        _fail("MODEL.DDW.COLLAPSE_SHARE", ddw.COLLAPSE_SHARE, "must be in [0, 1]")
    if ddw.COLLAPSE_PATIENCE < 1:
        _fail("MODEL.DDW.COLLAPSE_PATIENCE", ddw.COLLAPSE_PATIENCE, "must be >= 1")
    if ddw.SPARSITY_LOSS_WEIGHT < 0:
        _fail("MODEL.DDW.SPARSITY_LOSS_WEIGHT", ddw.SPARSITY_LOSS_WEIGHT, "must be >= 0")
