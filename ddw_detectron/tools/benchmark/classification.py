"""The classification settings of the benchmark: the classifier that ``pretrain_imagenet.py``
trains, DDW against its static twin (node weights shared), eager and compiled, a training step
and inference, interleaved as the detector's, each ratio beside its floor (:mod:`.floor`)."""

import copy
from typing import Dict, Tuple

import torch

from ...classification import add_classification_config, build_classifier
from ...config import load_config
from ...model_zoo import get_config_file
from .floor import floor_ratio, wiring_bytes
from .timing import Timings, interleaved, peak_bytes_of

__all__ = [
    "SETTINGS",
    "classification_models",
    "measure_setting",
    "step_entry",
    "step_functions",
]

# name: (shipped pretraining config, input size, batch size)
SETTINGS: Dict[str, Tuple[str, int, int]] = {
    "R-50, 224 px, batch 8": ("ImageNet/DDW_R_50.yaml", 224, 8),
    "MobileNetV2 1.0, 224 px, batch 8": ("ImageNet/DDW_MobileNetV2_1.0.yaml", 224, 8),
    "RegNetX-1.6GF, 224 px, batch 8": ("ImageNet/DDW_RegNetX_1.6GF.yaml", 224, 8),
    "the demo's R-34, 32 px, batch 64": ("Demo/pretrain_DDW_R_34_shapes.yaml", 32, 64),
}


def _classifier(config: str, device: str, dynamic: bool):
    opts = ["MODEL.DEVICE", device, "CLS.NUM_CLASSES", "1000"]
    if not dynamic:
        opts += ["MODEL.DDW.DYNAMIC_STAGES", "[]"]
    cfg = load_config(get_config_file(config), opts, extra=[add_classification_config])
    torch.manual_seed(0)
    return build_classifier(cfg).to(device)


def classification_models(config: str, device: str, compile_backend: str = ""):
    """``{"static", "ddw"[, "static_compiled", "ddw_compiled"]}`` classifiers of ``config``, the
    static one with the DDW one's weights but the routers."""
    ddw = _classifier(config, device, dynamic=True)
    static = _classifier(config, device, dynamic=False)
    static.load_state_dict({k: v for k, v in ddw.state_dict().items() if ".routers." not in k})
    models = {"static": static, "ddw": ddw}
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
    _, size, batch = SETTINGS[name]
    images = torch.rand(batch, 3, size, size, device=device) * 255
    labels = torch.randint(0, 1000, (batch,), device=device)
    steps = {}
    for kind, model in models.items():
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
        steps[kind] = _steps(model, optimizer, images, labels, amp)
    return steps


def step_entry(timings: Timings, moved: int, bytes_per_second: float) -> Dict:
    """Times (ms), DDW / static with the rounds' spread and the floor of ``moved`` bytes, for
    the eager pair and, when timed, the compiled pair (its floor over the compiled static
    step's time)."""
    entry = {
        "static_ms": timings.median("static") * 1e3,
        "ddw_ms": timings.median("ddw") * 1e3,
        "ratio": timings.ratio("ddw", "static"),
        "spread": timings.spread("ddw", "static"),
        "floor": floor_ratio(moved, bytes_per_second, timings.median("static")),
        "floor_bytes": moved,
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
    config, size, batch = SETTINGS[name]
    models = classification_models(config, options.device, options.compile_backend)
    steps = step_functions(name, models, options.device, options.amp)
    report = {"config": config, "input_size": size, "batch_size": batch, "steps": {}}
    for step in ("train_step", "inference"):
        runs = {kind: fns[step] for kind, fns in steps.items()}
        label = f"{name}: {step}"
        timings = interleaved(runs, options.repeats, options.warmup, options.device, label)
        moved = wiring_bytes(models["ddw"], steps["ddw"][step], training=step == "train_step")
        report["steps"][step] = step_entry(timings, moved, bytes_per_second)
    peaks = {k: peak_bytes_of(steps[k]["train_step"], options.device) for k in ("static", "ddw")}
    report["peak_memory_ratio"] = peaks["ddw"] / peaks["static"]
    return report
