"""The detectors the benchmark compares, built from the shipped R-CNN FPN config with shared
weights, and a synthetic batch to run them on."""

import copy
from typing import Dict, List, Optional, Sequence

import torch
from detectron2.config import get_cfg
from detectron2.layers import FrozenBatchNorm2d
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances

from ddw_detectron.checkpoint import DDWCheckpointer
from ddw_detectron.config import add_ddw_config, merge_config_file
from ddw_detectron.model_zoo import get_config_file
from ddw_detectron.modeling import FAMILIES
from ddw_lab.benchmark.classification import with_kernel

__all__ = ["ARCHS", "benchmark_cfg", "build_models", "synthetic_batch"]

# name: (family, overrides of the shipped Base-DDW-RCNN-FPN.yaml)
ARCHS = {
    "R-18": ("resnet", {"MODEL.RESNETS.DEPTH": 18, "MODEL.RESNETS.RES2_OUT_CHANNELS": 64}),
    "R-50": ("resnet", {"MODEL.RESNETS.DEPTH": 50}),
    "R-101": ("resnet", {"MODEL.RESNETS.DEPTH": 101}),
    "X-101-32x8d": (
        "resnet",
        {
            "MODEL.RESNETS.DEPTH": 101,
            "MODEL.RESNETS.NUM_GROUPS": 32,
            "MODEL.RESNETS.WIDTH_PER_GROUP": 8,
        },
    ),
    "MobileNetV2": ("mobilenetv2", {}),
    "RegNetX-1.6GF": ("regnet", {"MODEL.REGNET.PRESET": "RegNetX-1.6GF"}),
    "RegNetX-4GF": ("regnet", {"MODEL.REGNET.PRESET": "RegNetX-4GF"}),
}


def benchmark_cfg(arch: str, kind: str, device: str):
    """The config of one compared model: ``kind`` is ``detectron2`` (Detectron2's own ResNet
    FPN backbone), ``static`` (``DYNAMIC_STAGES []``), ``ddw`` (every stage) or ``ddw_plain``
    (every stage, ``MEMORY_EFFICIENT False``)."""
    family, overrides = ARCHS[arch]
    cfg = get_cfg()
    add_ddw_config(cfg)
    merge_config_file(cfg, get_config_file("Base-DDW-RCNN-FPN.yaml"))
    cfg.merge_from_list([item for pair in overrides.items() for item in pair])
    cfg.MODEL.DEVICE = device
    cfg.MODEL.WEIGHTS = ""
    description = FAMILIES[family]
    cfg.MODEL.FPN.IN_FEATURES = list(description.fpn_features)
    description.set_out_features(cfg, description.fpn_features)
    if kind == "detectron2":
        cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
    else:
        cfg.MODEL.BACKBONE.NAME = description.builders["fpn"]
    cfg.MODEL.DDW.DYNAMIC_STAGES = list(description.stage_names) if kind.startswith("ddw") else []
    cfg.MODEL.DDW.MEMORY_EFFICIENT = kind != "ddw_plain"
    return cfg


def _build(arch: str, kind: str, device: str, reference=None):
    """One model, seeded; with ``reference``, every weight but the routers copied from it."""
    torch.manual_seed(0)
    model = build_model(benchmark_cfg(arch, kind, device))
    if reference is not None:
        missing, unexpected = model.load_state_dict(reference.state_dict(), strict=False)
        not_router = [k for k in missing if ".routers." not in k]
        if unexpected or not_router:
            raise RuntimeError(
                f"{kind} does not share the static model's weights: unexpected {unexpected[:5]}, "
                f"missing {not_router[:5]}"
            )
    return model


def calibrate_norms(model, samples: List[Dict]) -> None:
    """Set every FrozenBatchNorm2d's statistics to those of its input on ``samples`` (one pass,
    each layer normalising its own input), so that random weights give activations of a sane
    scale, as pretrained statistics would, and the detectors' post-processing sees real boxes."""

    def set_stats(module, args):
        x = args[0].detach()
        module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        module.running_var.copy_(x.var(dim=(0, 2, 3)) + module.eps)

    handles = [
        m.register_forward_pre_hook(set_stats)
        for m in model.modules()
        if isinstance(m, FrozenBatchNorm2d)
    ]
    model.eval()
    with torch.no_grad():
        model.backbone(model.preprocess_image(samples).tensor)
    for handle in handles:
        handle.remove()


def synthetic_batch(n: int, size: int, device: str, seed: int = 0) -> List[Dict]:
    """``n`` random images of ``size`` x 4/3 ``size`` (rounded to 32) with 6 random boxes each,
    in Detectron2's input format."""
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        h, w = size, int(size * 4 / 3) // 32 * 32
        instances = Instances((h, w))
        x0 = torch.rand(6, generator=g) * (w - 100)
        y0 = torch.rand(6, generator=g) * (h - 100)
        wh = 30 + torch.rand(6, 2, generator=g) * 70
        instances.gt_boxes = Boxes(torch.stack([x0, y0, x0 + wh[:, 0], y0 + wh[:, 1]], 1))
        instances.gt_classes = torch.randint(0, 80, (6,), generator=g)
        samples.append(
            {
                "image": (torch.rand(3, h, w, generator=g) * 255).to(device),
                "instances": instances.to(device),
                "height": h,
                "width": w,
            }
        )
    return samples


def build_models(
    arch: str,
    device: str,
    samples: List[Dict],
    weights: str = "",
    compile_backend: Optional[str] = None,
    kernels: Sequence[str] = (),
    light: bool = False,
) -> Dict[str, torch.nn.Module]:
    """The models compared, keyed by kind, with the same weights where they share modules:
    ``detectron2`` (ResNet only), ``static``, ``ddw``, ``ddw_plain`` (``light``: static and ddw
    only), ``ddw_<kernel>`` for each extra aggregation kernel, and with ``compile_backend``
    copies of static and DDW whose backbones are compiled. ``weights``: a DDW checkpoint loaded
    into ``ddw``."""
    family = ARCHS[arch][0]
    kinds = (["detectron2"] if family == "resnet" else []) + ["static", "ddw", "ddw_plain"]
    if light:
        kinds = ["static", "ddw"]
    models = {"static": _build(arch, "static", device)}
    calibrate_norms(models["static"], samples)
    for kind in kinds:
        if kind != "static":
            models[kind] = _build(arch, kind, device, reference=models["static"])
    if weights:
        DDWCheckpointer(models["ddw"]).load(weights)
    for kernel in kernels:
        models[f"ddw_{kernel}"] = with_kernel(models["ddw"], kernel)
        kinds.append(f"ddw_{kernel}")
    if compile_backend:
        for kind in ("static", "ddw"):
            models[f"{kind}_compiled"] = copy.deepcopy(models[kind])
            models[f"{kind}_compiled"].backbone.compile(backend=compile_backend)
            kinds.append(f"{kind}_compiled")
    return {kind: models[kind] for kind in kinds}
