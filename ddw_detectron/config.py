"""Config keys of ddw_detectron.

``add_ddw_config(cfg)`` adds ``MODEL.DDW.*`` (the dynamic wiring), ``MODEL.MOBILENETV2.*`` and
``MODEL.REGNET.*`` (the two families Detectron2's ``get_cfg()`` has no keys for). ResNet and
ResNeXt use Detectron2's own ``MODEL.RESNETS.*`` unchanged.
"""

from detectron2.config import CfgNode as CN

from .layers import GATES, ROUTER_MODES

__all__ = [
    "UnsafeConfigError",
    "add_ddw_config",
    "check_ddw_config",
    "load_config",
    "merge_config_file",
    "read_yaml",
    "REGNET_PRESETS",
]

# RegNet generator parameters (Radosavovic et al., "Designing Network Design Spaces", 2020):
# depth, w0, wa, wm, group width, SE ratio.
REGNET_PRESETS = {
    "RegNetX-400MF": dict(DEPTH=22, W0=24, WA=24.48, WM=2.54, GROUP_WIDTH=16, SE_RATIO=0.0),
    "RegNetX-800MF": dict(DEPTH=16, W0=56, WA=35.73, WM=2.28, GROUP_WIDTH=16, SE_RATIO=0.0),
    "RegNetX-1.6GF": dict(DEPTH=18, W0=80, WA=34.01, WM=2.25, GROUP_WIDTH=24, SE_RATIO=0.0),
    "RegNetX-3.2GF": dict(DEPTH=25, W0=88, WA=26.31, WM=2.25, GROUP_WIDTH=48, SE_RATIO=0.0),
    "RegNetX-4GF": dict(DEPTH=23, W0=96, WA=38.65, WM=2.43, GROUP_WIDTH=40, SE_RATIO=0.0),
    "RegNetY-400MF": dict(DEPTH=16, W0=48, WA=27.89, WM=2.09, GROUP_WIDTH=8, SE_RATIO=0.25),
    "RegNetY-800MF": dict(DEPTH=14, W0=56, WA=38.84, WM=2.4, GROUP_WIDTH=16, SE_RATIO=0.25),
    "RegNetY-1.6GF": dict(DEPTH=27, W0=48, WA=20.71, WM=2.65, GROUP_WIDTH=24, SE_RATIO=0.25),
    "RegNetY-3.2GF": dict(DEPTH=21, W0=80, WA=42.63, WM=2.66, GROUP_WIDTH=24, SE_RATIO=0.25),
    "RegNetY-4GF": dict(DEPTH=22, W0=96, WA=31.41, WM=2.24, GROUP_WIDTH=64, SE_RATIO=0.25),
}


# The method's stage settings, written once: the defaults of ``MODEL.DDW.*`` and of
# ``modeling.dag_stage_factory`` (the LazyConfig path). ``DAGStage``'s own defaults differ on
# purpose (its docstring says why).
STAGE_DEFAULTS = {
    "threshold": 0.1,
    "gate": "ste",
    "router_hidden_dim": 0,
    "memory_efficient": True,
    "skip_unused_nodes": True,
    "init_edge_weights": None,
    "router_mode": "dynamic",
}
# ROUTER_INIT_CHAIN / ROUTER_INIT_OTHER of the start near the base network (fine-tuning).
NEAR_STATIC_INIT = (0.99, 0.05)


def add_ddw_config(cfg: CN) -> CN:
    """Add the DDW keys to a Detectron2 config in place (idempotent) and return it."""
    if "DDW" in cfg.MODEL:
        return cfg

    cfg.MODEL.DDW = CN()
    # Names of the stages that become dynamic DAGs (ResNet: res2..res5, MobileNetV2: mb1..mb7,
    # RegNet: s1..s4). [] keeps the static base architecture: the baseline of every comparison.
    cfg.MODEL.DDW.DYNAMIC_STAGES = []
    # tau: an edge whose weight is <= THRESHOLD is dropped for that image. In [0, 1).
    cfg.MODEL.DDW.THRESHOLD = STAGE_DEFAULTS["threshold"]
    # "ste": training forward uses the thresholded weights, backward passes through the mask, so
    # a dropped edge can come back. "soft": no threshold in training. Inference always thresholds.
    cfg.MODEL.DDW.GATE = STAGE_DEFAULTS["gate"]
    # 0: a router is GAP -> FC -> sigmoid; > 0: GAP -> FC(hidden) -> ReLU -> FC -> sigmoid.
    cfg.MODEL.DDW.ROUTER_HIDDEN_DIM = STAGE_DEFAULTS["router_hidden_dim"]
    # "dynamic": every router reads its node's output, so each image gets its own wiring (the
    # method). "static": one learned weight per edge shared by every image, through the same
    # gate, threshold and buffer: a learned static DAG (the control for per-image wiring).
    cfg.MODEL.DDW.ROUTER_MODE = STAGE_DEFAULTS["router_mode"]
    # The routers' start. ROUTER_INIT_CHAIN 0: PyTorch's plain random initialisation, as the
    # method trains from scratch (images differ in wiring from the first step). > 0: every
    # chain edge i -> i+1 starts near ROUTER_INIT_CHAIN and every other edge near
    # ROUTER_INIT_OTHER for every image; with 0.99 and 0.05 (under THRESHOLD) a fresh network
    # computes almost its static base, for fine-tuning from static ImageNet weights (the
    # COCO configs); the dropped edges can come back through the straight-through gradient.
    cfg.MODEL.DDW.ROUTER_INIT_CHAIN = 0.0
    cfg.MODEL.DDW.ROUTER_INIT_OTHER = NEAR_STATIC_INIT[1]
    # > 0 adds loss_ddw_sparsity = weight * sum over stages of the mean L1 of edge weights.
    cfg.MODEL.DDW.SPARSITY_LOSS_WEIGHT = 0.0
    # True: buffered aggregation, the aggregated node inputs recomputed in backward (saves about
    # one feature map per node); False: plain autograd sums. Same values either way.
    cfg.MODEL.DDW.MEMORY_EFFICIENT = STAGE_DEFAULTS["memory_efficient"]
    # At inference with batch size 1, a node that receives no kept edge gets an all-zero input;
    # its output then does not depend on the image and comes from a cache. Exact.
    cfg.MODEL.DDW.SKIP_UNUSED_NODES = STAGE_DEFAULTS["skip_unused_nodes"]
    # Learning rate of router parameters over the base learning rate, in both trainers
    # (detection: SOLVER.BASE_LR, pretraining: the CLS learning rate). A router's gradient is
    # one sigmoid derivative times an inner product of feature maps: at the initial weights
    # (sigmoid' is 0.01 at 0.99 and 0.05 at 0.05) it is two orders of magnitude smaller than a
    # conv layer's, so with SGD in a short schedule the routers barely move and a dropped edge
    # never comes back; a factor over 1 lets them learn. 1 keeps the paper's single learning
    # rate; under 1 keeps a pretrained wiring (the demo's detection config uses 0.1).
    cfg.MODEL.DDW.ROUTER_LR_FACTOR = 1.0
    # Training logs the wiring statistics (ddw/<stage>/*) every LOG_PERIOD iterations, as
    # Detectron2's writers log the losses every 20.
    cfg.MODEL.DDW.LOG_PERIOD = 20

    _add_data_keys(cfg)
    _add_compile_keys(cfg)
    _add_family_keys(cfg)
    return cfg


def _add_compile_keys(cfg: CN) -> None:
    """``MODEL.COMPILE.*``: torch.compile in both trainers (``engine.compile_from_config``)."""
    cfg.MODEL.COMPILE = CN()
    # Compile in place (nn.Module.compile: checkpoint keys unchanged) for training and evaluation.
    # Off by default: on a CPU the first iterations wait minutes for the compiler.
    cfg.MODEL.COMPILE.ENABLED = False
    # "backbone": the backbone (DDW backbones compile whole, fullgraph=True: a graph break is an
    # error); "model": the whole model (Detectron2's heads and post-processing break the graph
    # wherever they leave tensors, and the compiler runs those parts eagerly).
    cfg.MODEL.COMPILE.TARGET = "backbone"
    # torch.compile's backend and mode ("" for its default mode), e.g. "max-autotune".
    cfg.MODEL.COMPILE.BACKEND = "inductor"
    cfg.MODEL.COMPILE.MODE = ""


def _add_family_keys(cfg: CN) -> None:
    """Each registered family's ``MODEL.<node>`` keys (Detectron2 has ``RESNETS`` already)."""
    from .modeling.family import FAMILIES

    for family in FAMILIES.values():
        if family.add_config is not None:
            family.add_config(cfg)


def _add_data_keys(cfg: CN) -> None:
    """Keys of the data path (unreadable images), beside Detectron2's DATALOADER and TEST."""
    # Training skips an image it cannot read (missing, empty, truncated or corrupt file, or a size
    # that disagrees with the annotation), names it in a warning and in
    # OUTPUT_DIR/skipped_images.jsonl, and counts it (data/skipped_images in metrics.json). Past
    # this share of the training set, the run stops with an error listing the files.
    cfg.DATALOADER.MAX_UNREADABLE_IMAGE_SHARE = 0.01
    # Evaluation stops at an unreadable image, naming it, unless this is True: then such images
    # are left out before inference (found by decoding each image once), count as images where
    # nothing was detected, and their number is printed beside the AP.
    cfg.TEST.SKIP_UNREADABLE_IMAGES = False


def _fail(key: str, value, allowed: str) -> None:
    raise ValueError(f"{key} = {value!r} is invalid: {allowed}")


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


def check_ddw_config(cfg: CN, stage_names) -> None:
    """Validate ``MODEL.DDW.*`` for a backbone with the given stage names; raise ValueError."""
    if "DDW" not in cfg.MODEL:
        raise ValueError(
            "the config has no MODEL.DDW keys: call ddw_detectron.add_ddw_config(cfg) before "
            "merging a DDW config file"
        )
    ddw = cfg.MODEL.DDW
    check_dynamic_stages(ddw.DYNAMIC_STAGES, stage_names)
    if not 0.0 <= ddw.THRESHOLD < 1.0:
        _fail("MODEL.DDW.THRESHOLD", ddw.THRESHOLD, "must be in [0, 1)")
    if ddw.ROUTER_MODE not in ROUTER_MODES:
        _fail("MODEL.DDW.ROUTER_MODE", ddw.ROUTER_MODE, f"allowed values are {list(ROUTER_MODES)}")
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
    if ddw.SPARSITY_LOSS_WEIGHT < 0:
        _fail("MODEL.DDW.SPARSITY_LOSS_WEIGHT", ddw.SPARSITY_LOSS_WEIGHT, "must be >= 0")


class UnsafeConfigError(ValueError):
    """A config file that is not plain YAML (a Python tag would run code on loading), or that
    cannot be parsed; the message names the file and the problem."""


def _yaml_problem(config_file: str, exc: Exception) -> UnsafeConfigError:
    import yaml

    tag = getattr(exc, "problem", "") or str(exc)
    if isinstance(exc, yaml.constructor.ConstructorError):
        return UnsafeConfigError(
            f"{config_file} is refused: {tag.strip()} ({getattr(exc, 'problem_mark', '')}). "
            "Configs are plain YAML; a Python tag would run code when the file is loaded."
        )
    return UnsafeConfigError(f"cannot read config {config_file}: {exc}")


def read_yaml(config_file: str) -> dict:
    """A YAML config with its ``_BASE_`` files merged, loaded safely (no Python tags)."""
    import yaml

    try:
        return CN.load_yaml_with_base(config_file, allow_unsafe=False)
    except yaml.YAMLError as exc:
        raise _yaml_problem(config_file, exc) from exc


def merge_config_file(cfg: CN, config_file: str) -> CN:
    """``cfg.merge_from_file(config_file)`` without Python tags (Detectron2 falls back to an
    unsafe loader by default); raises :class:`UnsafeConfigError` naming the file."""
    import yaml

    try:
        cfg.merge_from_file(config_file, allow_unsafe=False)
    except yaml.YAMLError as exc:
        raise _yaml_problem(config_file, exc) from exc
    return cfg


def load_config(config_file: str, opts=(), extra=()) -> CN:
    """Detectron2's config with the DDW keys (and those added by the ``extra`` functions),
    merged with ``config_file`` (plain YAML only) and ``KEY VALUE`` overrides; ``MODEL.DEVICE``
    falls back to the CPU when CUDA is not available."""
    import torch
    from detectron2.config import get_cfg

    cfg = get_cfg()
    add_ddw_config(cfg)
    for add in extra:
        add(cfg)
    merge_config_file(cfg, config_file)
    cfg.merge_from_list(list(opts))
    if not torch.cuda.is_available() and cfg.MODEL.DEVICE.startswith("cuda"):
        cfg.MODEL.DEVICE = "cpu"
    return cfg
