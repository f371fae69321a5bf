"""The classification settings of the benchmark: the classifier that ``pretrain_imagenet.py``
trains, DDW against its static twin (node weights shared), eager and compiled, a training step
and inference, interleaved as the detector's, each ratio beside its floor (:mod:`.floor`)."""

import copy
from typing import Dict, Tuple

import torch

from ddw_detectron.classification import add_classification_config, build_classifier
from ddw_detectron.config import load_config
from ddw_detectron.layers import DAGStage
from ddw_detectron.model_zoo import get_config_file
from ddw_lab.benchmark.floor import floor_ratio, wiring_bytes
from ddw_lab.benchmark.timing import Timings, interleaved, peak_bytes_of

__all__ = [
    "GROUPS",
    "SETTINGS",
    "with_kernel",
    "classification_models",
    "measure_setting",
    "step_entry",
    "step_functions",
]

# name: (shipped pretraining config, input size, batch size, channels_last)
SETTINGS: Dict[str, Tuple[str, int, int, bool]] = {
    "R-50, 224 px, batch 8": ("ImageNet/DDW_R_50.yaml", 224, 8, False),
    "MobileNetV2 1.0, 224 px, batch 8": ("ImageNet/DDW_MobileNetV2_1.0.yaml", 224, 8, False),
    "RegNetX-1.6GF, 224 px, batch 8": ("ImageNet/DDW_RegNetX_1.6GF.yaml", 224, 8, False),
    "the demo's R-34, 32 px, batch 64": ("Demo/pretrain_DDW_R_34_shapes.yaml", 32, 64, False),
    "R-50, 224 px, batch 128, channels_last": ("ImageNet/DDW_R_50.yaml", 224, 128, True),
    "MobileNetV2 1.0, 224 px, batch 256, channels_last": (
        "ImageNet/DDW_MobileNetV2_1.0.yaml",
        224,
        256,
        True,
    ),
    "RegNetX-1.6GF, 224 px, batch 128, channels_last": (
        "ImageNet/DDW_RegNetX_1.6GF.yaml",
        224,
        128,
        True,
    ),
    # the device check's dry run: the quickest, in the GPU settings' memory format
    "the demo's R-34, 32 px, batch 8, channels_last": (
        "Demo/pretrain_DDW_R_34_shapes.yaml",
        32,
        8,
        True,
    ),
}
# What --classification takes by one name: the settings make bench measures on a CPU, and the
# batch sizes and memory format GPU users pretrain with (the device check's).
GROUPS: Dict[str, Tuple[str, ...]] = {
    "cpu": (
        "R-50, 224 px, batch 8",
        "MobileNetV2 1.0, 224 px, batch 8",
        "RegNetX-1.6GF, 224 px, batch 8",
        "the demo's R-34, 32 px, batch 64",
    ),
    "gpu": (
        "R-50, 224 px, batch 128, channels_last",
        "MobileNetV2 1.0, 224 px, batch 256, channels_last",
        "RegNetX-1.6GF, 224 px, batch 128, channels_last",
    ),
}


def _classifier(config: str, device: str, dynamic: bool, channels_last: bool):
    opts = ["MODEL.DEVICE", device, "CLS.NUM_CLASSES", "1000"]
    if not dynamic:
        opts += ["MODEL.DDW.DYNAMIC_STAGES", "[]"]
    cfg = load_config(get_config_file(config), opts, extra=[add_classification_config])
    torch.manual_seed(0)
    model = build_classifier(cfg).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def with_kernel(model, kernel: str):
    """A copy of ``model`` whose DAG stages aggregate with ``kernel``."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, DAGStage):
            module.aggregation_kernel = kernel
    return model


def classification_models(
    config: str,
    device: str,
    compile_backend: str = "",
    channels_last: bool = False,
    kernels: Tuple[str, ...] = (),
):
    """``{"static", "ddw"[, "ddw_<kernel>" ...][, "static_compiled", "ddw_compiled"]}``
    classifiers of ``config``, the static one with the DDW one's weights but the routers; a
    ``ddw_<kernel>`` per extra aggregation kernel."""
    ddw = _classifier(config, device, True, channels_last)
    static = _classifier(config, device, False, channels_last)
    static.load_state_dict({k: v for k, v in ddw.state_dict().items() if ".routers." not in k})
    models = {"static": static, "ddw": ddw}
    for kernel in kernels:
        models[f"ddw_{kernel}"] = with_kernel(ddw, kernel)
    if compile_backend:
        for kind in ("static", "ddw"):
            models[f"{kind}_compiled"] = copy.deepcopy(models[kind])
            models[f"{kind}_compiled"].backbone.compile(backend=compile_backend, fullgraph=True)
    return models


def _steps(model, optimizer, images, labels, amp: bool):
    device = images.device.type
    dtype = torch.float16 if device == "cuda" else torch.bfloat16

    def train():
        model.train()
        with torch.autocast(device, dtype=dtype, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def infer():
        model.eval()
        with torch.no_grad(), torch.autocast(device, dtype=dtype, enabled=amp):
            model(images)

    return {"train_step": train, "inference": infer}


def step_functions(name: str, models: Dict, device: str, amp: bool) -> Dict:
    """``{kind: {"train_step", "inference"}}`` of each model on one random batch of setting
    ``name`` (SGD with momentum: the update's work without moving the weights much)."""
    _, size, batch, channels_last = SETTINGS[name]
    images = torch.rand(batch, 3, size, size, device=device) * 255
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 1000, (batch,), device=device)
    steps = {}
    for kind, model in models.items():
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
        steps[kind] = _steps(model, optimizer, images, labels, amp)
    return steps


def step_entry(timings: Timings, moved: int, bytes_per_second: float) -> Dict:
    """Times (ms), DDW / static with the rounds' spread and the floor of ``moved`` bytes, for
    the eager pair, each extra kernel's DDW (``kernels``) and, when timed, the compiled pair (its
    floor over the compiled static step's time)."""
    entry = {
        "static_ms": timings.median("static") * 1e3,
        "ddw_ms": timings.median("ddw") * 1e3,
        "ratio": timings.ratio("ddw", "static"),
        "spread": timings.spread("ddw", "static"),
        "floor": floor_ratio(moved, bytes_per_second, timings.median("static")),
        "floor_bytes": moved,
    }
    extra = [k for k in timings.times if k.startswith("ddw_") and k not in ("ddw_compiled",)]
    if extra:
        entry["kernels"] = {
            k[len("ddw_") :]: {
                "ms": timings.median(k) * 1e3,
                "ratio": timings.ratio(k, "static"),
                "spread": timings.spread(k, "static"),
            }
            for k in extra
        }
    if "ddw_compiled" in timings.times:
        static_compiled = timings.median("static_compiled")
        entry["static_compiled_ms"] = static_compiled * 1e3
        entry["ddw_compiled_ms"] = timings.median("ddw_compiled") * 1e3
        entry["compiled_ratio"] = timings.ratio("ddw_compiled", "static_compiled")
        entry["compiled_spread"] = timings.spread("ddw_compiled", "static_compiled")
        entry["compiled_floor"] = floor_ratio(moved, bytes_per_second, static_compiled)
    return entry


def measure_setting(name: str, options, bytes_per_second: float) -> Dict:
    """Times (interleaved), ratios, floors and peak training memory of one setting."""
    config, size, batch, channels_last = SETTINGS[name]
    models = classification_models(
        config, options.device, options.compile_backend, channels_last, options.kernels
    )
    steps = step_functions(name, models, options.device, options.amp)
    report = {
        "config": config,
        "input_size": size,
        "batch_size": batch,
        "channels_last": channels_last,
        "amp": options.amp,
        "steps": {},
    }
    for step in ("train_step", "inference"):
        runs = {kind: fns[step] for kind, fns in steps.items()}
        label = f"{name}: {step}"
        timings = interleaved(runs, options.repeats, options.warmup, options.device, label)
        moved = wiring_bytes(models["ddw"], steps["ddw"][step], training=step == "train_step")
        report["steps"][step] = step_entry(timings, moved, bytes_per_second)
    eager = [k for k in steps if not k.endswith("_compiled")]
    peaks = {k: peak_bytes_of(steps[k]["train_step"], options.device) for k in eager}
    report["peak_memory_ratio"] = peaks["ddw"] / peaks["static"]
    report["kernel_peak_memory_ratio"] = {
        k[len("ddw_") :]: peaks[k] / peaks["static"] for k in eager if k.startswith("ddw_")
    }
    return report
