"""Side-by-side measurements of the compared models: counts, interleaved timings, memory,
operators per DAG node, the aggregation alone and the skipping of unused nodes."""

import copy
import platform
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import torch
from detectron2.utils.analysis import FlopCountAnalysis
from detectron2.utils.events import EventStorage

from ddw_detectron.layers import DAGStage, aggregate, freeze_wiring
from ddw_detectron.utils.flops import aggregation_flops, count_flops
from ddw_detectron.utils.op_count import count_dispatched, count_kernels
from ddw_lab.benchmark.classification import measure_setting
from ddw_lab.benchmark.floor import bandwidth, floor_ratio, wiring_bytes
from ddw_lab.benchmark.models import build_models, synthetic_batch
from ddw_lab.benchmark.timing import Timings, interleaved, peak_bytes_of
from ddw_lab.process import STEADY_MALLOC, steady_malloc_active

__all__ = [
    "STEADY_MALLOC",
    "BenchmarkOptions",
    "Timings",
    "interleaved",
    "kernel_kinds",
    "run_benchmark",
    "steady_malloc_active",
    "wiring_with_unused_nodes",
]


@dataclass
class BenchmarkOptions:
    """What ``scripts/benchmark.py`` measures (its arguments)."""

    arch: str = "R-50"
    device: str = "cpu"
    batch_size: int = 2
    image_size: int = 512
    repeats: int = 5
    warmup: int = 2
    weights: str = ""
    compile_backend: str = ""
    amp: bool = False
    classification: Tuple[str, ...] = ()  # names of classification.SETTINGS measured too
    kernels: Tuple[str, ...] = ()  # extra aggregation kernels DDW is timed with ("triton")
    light: bool = False  # the detector's timings, memory and floors only (no counts)


def autocast(samples, amp: bool):
    """float16 autocast on CUDA, bfloat16 on CPU, when ``amp``."""
    device = samples[0]["image"].device.type
    dtype = torch.float16 if device == "cuda" else torch.bfloat16
    return torch.autocast(device, dtype=dtype, enabled=amp)


def train_step(model, optimizer, samples, amp=False) -> None:
    model.train()
    with EventStorage(), autocast(samples, amp):
        losses = model(samples)
        loss = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def inference_inputs(samples) -> List[Dict]:
    """``samples`` without their ground truth, as a detector takes them at test time."""
    return [{"image": s["image"], "height": s["height"], "width": s["width"]} for s in samples]


def inference(model, samples, amp=False) -> None:
    model.eval()
    with torch.no_grad(), autocast(samples, amp):
        model(inference_inputs(samples))


def backbone_inference(model, samples, amp=False) -> None:
    model.eval()
    with torch.no_grad(), autocast(samples, amp):
        model.backbone(model.preprocess_image(samples).tensor)


STEPS = {
    "train_step": lambda m, o, s, amp: train_step(m, o, s, amp),
    "inference": lambda m, o, s, amp: inference(m, s, amp),
    "inference_backbone": lambda m, o, s, amp: backbone_inference(m, s, amp),
}


def peak_training_bytes(model, optimizer, samples, device, amp=False) -> int:
    """:func:`peak_bytes_of` a detector's training step."""
    return peak_bytes_of(lambda: train_step(model, optimizer, samples, amp), device)


def saved_bytes(fn: Callable) -> int:
    """Bytes of the unique storages autograd saves for backward while ``fn`` runs."""
    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


def aggregation_alone(device, repeats, warmup, k=6, shape=(2, 256, 128, 128)) -> Dict:
    """The buffered aggregate against a plain weighted sum of ``k`` features, forward and
    backward: time ratio and ratio of bytes saved for backward."""
    features = [torch.randn(shape, device=device, requires_grad=True) for _ in range(k)]
    weights = torch.rand(shape[0], k, device=device, requires_grad=True)

    def plain():
        return sum(weights[:, i].reshape(-1, 1, 1, 1) * f for i, f in enumerate(features))

    def buffered():
        return aggregate(features, weights)

    upstream = torch.randn(shape, device=device)  # a dense gradient, as inside a network

    def step(fn):
        return lambda: fn().backward(upstream)

    times = interleaved(
        {"buffered": step(buffered), "plain": step(plain)}, repeats * 4, warmup, device
    )
    return {
        "time": times.ratio("buffered", "plain"),
        "saved_bytes": saved_bytes(buffered) / saved_bytes(plain),
        "buffered_ms": times.median("buffered") * 1e3,
        "plain_ms": times.median("plain") * 1e3,
        "shape": f"{k} x {list(shape)}",
    }


def wiring_with_unused_nodes(n: int) -> torch.Tensor:
    """An ``[n, n]`` wiring in which nodes 1, 3, 5, ... (not the last) get no kept incoming edge;
    every other node reads the nearest node before it that is used."""
    unused = set(range(1, n - 1, 2))
    adjacency = torch.zeros(n, n)
    for j in range(1, n):
        if j not in unused:
            adjacency[j - 2 if j - 1 in unused else j - 1, j] = 0.9
    return adjacency


def _dag_stages(model) -> List[DAGStage]:
    return [s for s in model.modules() if isinstance(s, DAGStage)]


def skipping_at_batch_one(model, samples, options: BenchmarkOptions) -> Dict:
    """Share of nodes skipped and backbone time with / without skipping at batch 1, for the
    model's own wiring and for a copy whose stages are frozen to
    :func:`wiring_with_unused_nodes`."""
    single = samples[:1]
    sparse = copy.deepcopy(model)
    for stage in _dag_stages(sparse):
        stage.keep_strongest_input = False  # the wiring leaves nodes without input on purpose
        freeze_wiring(stage, wiring_with_unused_nodes(stage.num_nodes))
    report = {}
    for name, m in (("own_wiring", model), ("unused_nodes_wiring", sparse)):
        stages = _dag_stages(m)

        def run(skip, m=m, stages=stages):
            def call():
                for stage in stages:
                    stage.skip_unused_nodes = skip
                backbone_inference(m, single, options.amp)

            return call

        run(True)()
        skipped = sum(len(s.skipped_nodes) for s in stages) / sum(s.num_nodes for s in stages)
        times = interleaved(
            {"skip": run(True), "no_skip": run(False)},
            options.repeats,
            options.warmup,
            options.device,
        )
        report[name] = {"share_skipped": skipped, "time_ratio": times.ratio("skip", "no_skip")}
    for stage in _dag_stages(model):
        stage.skip_unused_nodes = True
    return report


def count_model(model, samples, x) -> Dict:
    """Parameters (backbone, detector) and FLOPs (backbone, detector) of one model."""
    model.eval()
    analysis = FlopCountAnalysis(model, inference_inputs(samples))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings(
        "none"
    )
    return {
        "params": sum(p.numel() for p in model.backbone.bottom_up.parameters()),
        "params_detector": sum(p.numel() for p in model.parameters()),
        "flops_backbone": count_flops(model.backbone, (x,))["total"],
        "flops": int(analysis.total()) + aggregation_flops(model.backbone, (x,)),
    }


def time_models(models, optimizers, samples, options: BenchmarkOptions) -> Dict[str, Timings]:
    """Interleaved timings of the training step, detector inference and backbone inference."""
    timings = {}
    for key, step in STEPS.items():
        runs = {
            k: (lambda m=m, o=optimizers[k], step=step: step(m, o, samples, options.amp))
            for k, m in models.items()
        }
        timings[key] = interleaved(runs, options.repeats, options.warmup, options.device, key)
    return timings


def operators_per_node(models, optimizers, samples, options: BenchmarkOptions) -> Dict:
    """Operators DDW adds per DAG node over the static network, for backbone inference and a
    training step: ATen operators dispatched (eager), and on CUDA kernels launched (eager and
    compiled)."""
    nodes = sum(s.num_nodes for s in _dag_stages(models["ddw"]))
    report = {"nodes": nodes}
    for key in ("inference_backbone", "train_step"):

        def run(kind, step=STEPS[key]):
            return lambda: step(models[kind], optimizers[kind], samples, options.amp)

        counts = {"eager": {k: count_dispatched(run(k)) for k in ("static", "ddw")}}
        if str(options.device).startswith("cuda"):
            for suffix in ("", "_compiled"):
                if f"ddw{suffix}" in models:
                    counts[f"kernels{suffix or '_eager'}"] = {
                        k: count_kernels(run(k + suffix), options.device) for k in ("static", "ddw")
                    }
        report[key] = {
            name: {**c, "per_node": (c["ddw"] - c["static"]) / nodes} for name, c in counts.items()
        }
    return report


def memory(model, optimizer, samples, options: BenchmarkOptions) -> Dict:
    """Peak bytes of a training step and bytes autograd saves in a training forward."""

    def forward_only():
        model.train()
        with EventStorage(), autocast(samples, options.amp):
            return sum(model(samples).values())

    return {
        "peak_bytes": peak_training_bytes(model, optimizer, samples, options.device, options.amp),
        "hook_saved_bytes": saved_bytes(forward_only),
    }


def kernel_kinds(models) -> List[str]:
    """The ``ddw_<kernel>`` kinds: DDW with another aggregation kernel, timed only."""
    return [k for k in models if k.startswith("ddw_") and k not in ("ddw_plain", "ddw_compiled")]


def ratios_of(results: Dict, timings: Dict[str, Timings]) -> Dict:
    """DDW / static for every figure; the same for the compiled pair when there is one, and each
    extra kernel's DDW / static time."""
    ddw, static = results["ddw"], results["static"]
    counted = {
        key: ddw[key] / static[key]
        for key in ("params", "flops", "flops_backbone")
        if key in static
    }
    ratios = {
        **counted,
        **{key: timing.ratio("ddw", "static") for key, timing in timings.items()},
        "spread": {key: timing.spread("ddw", "static") for key, timing in timings.items()},
        "saved_bytes": ddw["peak_bytes"] / static["peak_bytes"],
        "hook_saved_bytes": ddw["hook_saved_bytes"] / static["hook_saved_bytes"],
    }
    kernels = kernel_kinds(results)
    if kernels:
        ratios["kernels"] = {
            kind[len("ddw_") :]: {key: t.ratio(kind, "static") for key, t in timings.items()}
            for kind in kernels
        }
    if "ddw_compiled" in results:
        ratios["compiled"] = {
            key: timing.ratio("ddw_compiled", "static_compiled") for key, timing in timings.items()
        }
        ratios["compiled_spread"] = {
            key: timing.spread("ddw_compiled", "static_compiled") for key, timing in timings.items()
        }
    return ratios


def measure(models, optimizers, samples, options: BenchmarkOptions):
    """Counts (not ``light``), timings and memory of every model; the compiled ones and the
    other kernels' DDW are timed only."""
    eager = [k for k in models if not k.endswith("_compiled") and k not in kernel_kinds(models)]
    x = models["static"].preprocess_image(samples).tensor
    results = {
        kind: {} if options.light else count_model(models[kind], samples, x) for kind in eager
    }
    timings = time_models(models, optimizers, samples, options)
    for kind in models:
        medians = {key: timing.median(kind) for key, timing in timings.items()}
        results.setdefault(kind, {}).update(medians)
        if not kind.endswith("_compiled"):
            results[kind].update(memory(models[kind], optimizers[kind], samples, options))
    return results, timings


def detection_floors(models, optimizers, samples, options, report) -> Dict[str, Dict]:
    """:mod:`.floor` of the detector's training step and of its backbone + FPN inference:
    ``{"eager": {step: floor}}`` over the static model's times, and ``"compiled"`` over the
    compiled static model's when there is one (the floor of the compiled ratio)."""
    times = report["models"]
    references = {"eager": "static"}
    if "static_compiled" in times:
        references["compiled"] = "static_compiled"
    floors = {kind: {} for kind in references}
    for key, training in (("train_step", True), ("inference_backbone", False)):
        step = STEPS[key]

        def run(step=step):
            step(models["ddw"], optimizers["ddw"], samples, options.amp)

        moved = wiring_bytes(models["ddw"], run, training)
        for kind, static in references.items():
            floors[kind][key] = floor_ratio(moved, report["bandwidth"], times[static][key])
    return floors


def _static_vs_detectron2(results: Dict, timings: Dict[str, Timings]) -> Dict:
    static, reference = results["static"], results["detectron2"]
    ratios = {k: static[k] / reference[k] for k in ("params", "flops")}
    ratios.update(
        {k: timings[k].ratio("static", "detectron2") for k in ("train_step", "inference")}
    )
    return ratios


def run_benchmark(options: BenchmarkOptions) -> Dict:
    """Build the compared models and measure them side by side; the report (JSON-ready)."""
    samples = synthetic_batch(options.batch_size, options.image_size, options.device)
    models = build_models(
        options.arch,
        options.device,
        samples,
        options.weights,
        options.compile_backend,
        options.kernels,
        options.light,
    )
    optimizers = {
        k: torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=1e-5, momentum=0.9)
        for k, m in models.items()
    }
    results, timings = measure(models, optimizers, samples, options)
    malloc = ", ".join(f"{k}={v}" for k, v in STEADY_MALLOC.items())
    report = {
        "arch": options.arch,
        "device": options.device,
        "batch_size": options.batch_size,
        "image_size": options.image_size,
        "repeats": options.repeats,
        "amp": options.amp,
        "compile_backend": options.compile_backend or None,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "malloc": f"freed memory kept ({malloc})" if steady_malloc_active() else "default",
        "light": options.light,
        "models": results,
        "ratios": ratios_of(results, timings),
    }
    if not options.light:
        report["operators"] = operators_per_node(models, optimizers, samples, options)
        report["aggregate"] = aggregation_alone(options.device, options.repeats, options.warmup)
        report["skipping_batch1"] = skipping_at_batch_one(models["ddw"], samples, options)
    report["bandwidth"] = bandwidth(options.device)
    report["floors"] = detection_floors(models, optimizers, samples, options, report)
    report["classification"] = {
        name: measure_setting(name, options, report["bandwidth"]) for name in options.classification
    }
    if "detectron2" in results:
        report["static_vs_detectron2"] = _static_vs_detectron2(results, timings)
    return report
