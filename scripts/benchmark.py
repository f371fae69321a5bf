#!/usr/bin/env python
"""Side-by-side cost of DDW against the static network, measured in one process.

    python scripts/benchmark.py --arch R-50 --batch-size 2 --image-size 512 --json bench.json

Builds the Faster R-CNN FPN detector four ways: Detectron2's own backbone (ResNet only), this
project's static mode (DYNAMIC_STAGES []), DDW on every stage, and DDW with plain autograd sums
(MEMORY_EFFICIENT False, for comparison), with node, FPN and head weights copied between them and
FrozenBatchNorm statistics calibrated on the batch. The models run in turns, the order rotating
every round, after warm-up; a time is the median over rounds and a time ratio the median of the
per-round ratios, so that drifts of the machine hit both sides alike. Memory on CPU is the peak
of bytes allocated during a training step (torch.profiler's memory events), on CUDA
``torch.cuda.max_memory_allocated``; the bytes saved for backward (saved-tensor hooks, unique
storages) are printed beside it.

On Linux CPUs the script restarts itself with glibc's malloc told to keep freed memory
(``MALLOC_MMAP_MAX_=0``, a high ``MALLOC_TRIM_THRESHOLD_``; ``--default-malloc`` turns this off).
By default glibc returns every large freed block to the system and page-faults it back on the
next allocation: on this project's 2-core machine that was a third of an R-50 forward pass, in
system time that varied by several percent between two runs of the same network.
"""

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.analysis import FlopCountAnalysis as DetectronFlops
from detectron2.utils.events import EventStorage
from tqdm import tqdm

import ddw_detectron
from ddw_detectron.layers import DAGStage, aggregate, freeze_wiring
from ddw_detectron.modeling import FAMILIES
from ddw_detectron.utils.flops import aggregation_flops, count_flops
from ddw_detectron.utils.op_count import count_dispatched, count_kernels

ROOT = Path(__file__).resolve().parent.parent
STEADY_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40)}
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


def make_cfg(arch: str, kind: str, device: str):
    family, overrides = ARCHS[arch]
    cfg = get_cfg()
    ddw_detectron.add_ddw_config(cfg)
    cfg.merge_from_file(str(ROOT / "configs" / "Base-DDW-RCNN-FPN.yaml"))
    cfg.MODEL.DEVICE = device
    cfg.MODEL.WEIGHTS = ""
    for key, value in overrides.items():
        node = cfg
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
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


def build(arch, kind, device, reference=None):
    torch.manual_seed(0)
    model = build_model(make_cfg(arch, kind, device))
    if reference is not None:
        missing, unexpected = model.load_state_dict(reference.state_dict(), strict=False)
        assert not unexpected, unexpected[:5]
        assert all(".routers." in k for k in missing), [k for k in missing if ".routers." not in k][
            :5
        ]
    return model


def calibrate_norms(model, samples):
    """Set every FrozenBatchNorm2d's statistics to those of its input on ``samples`` (one pass,
    each layer normalising its own input), so that random weights give activations of a sane
    scale, as pretrained statistics would, and the detectors' post-processing sees real boxes."""
    from detectron2.layers import FrozenBatchNorm2d

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


def batch(n, size, device, seed=0):
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


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# Set by --amp: autocast (float16 on CUDA, bfloat16 on CPU) around forward passes.
AMP = {"enabled": False}


def autocast(samples):
    device = samples[0]["image"].device.type
    dtype = torch.float16 if device == "cuda" else torch.bfloat16
    return torch.autocast(device, dtype=dtype, enabled=AMP["enabled"])


def train_step(model, optimizer, samples):
    model.train()
    with EventStorage(), autocast(samples):
        losses = model(samples)
        loss = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def inference(model, samples):
    model.eval()
    with torch.no_grad(), autocast(samples):
        model([{"image": s["image"], "height": s["height"], "width": s["width"]} for s in samples])


def backbone_inference(model, samples):
    model.eval()
    with torch.no_grad(), autocast(samples):
        model.backbone(model.preprocess_image(samples).tensor)


class Timings:
    """Seconds per round of each function; ``median(name)`` and the paired ``ratio(a, b)``."""

    def __init__(self, times):
        self.times = times

    def median(self, name):
        return statistics.median(self.times[name])

    def ratio(self, name, reference):
        return statistics.median(a / b for a, b in zip(self.times[name], self.times[reference]))

    def spread(self, name, reference):
        """The lowest and highest per-round ratio: how far one round's ratio strays."""
        ratios = [a / b for a, b in zip(self.times[name], self.times[reference])]
        return [min(ratios), max(ratios)]


def interleaved(fns, repeats, warmup, device, label="") -> Timings:
    """Run the functions in turns, the order rotating each round, and time each call."""
    names = list(fns)
    times = {name: [] for name in names}
    rounds = range(warmup + repeats)
    for i in tqdm(rounds, desc=label, unit="round", leave=False, disable=not label):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            sync(device)
            start = time.perf_counter()
            fns[name]()
            sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return Timings(times)


def peak_training_bytes(model, optimizer, samples, device):
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        train_step(model, optimizer, samples)
        sync(device)
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        train_step(model, optimizer, samples)
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    current = peak = 0
    for event in events:
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak


def saved_bytes(fn):
    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


def aggregation_alone(device, repeats, warmup, k=6, shape=(2, 256, 128, 128)):
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


def skipping_at_batch_one(model, samples, repeats, warmup, device):
    """Share of nodes skipped and backbone time with / without skipping at batch 1, for the
    model's own wiring and for a copy whose stages are frozen to
    :func:`wiring_with_unused_nodes`."""
    single = samples[:1]
    sparse = copy.deepcopy(model)
    for stage in sparse.modules():
        if isinstance(stage, DAGStage):
            freeze_wiring(stage, wiring_with_unused_nodes(stage.num_nodes))
    report = {}
    for name, m in (("own_wiring", model), ("unused_nodes_wiring", sparse)):
        stages = [s for s in m.modules() if isinstance(s, DAGStage)]

        def run(skip, m=m, stages=stages):
            def call():
                for stage in stages:
                    stage.skip_unused_nodes = skip
                backbone_inference(m, single)

            return call

        run(True)()
        skipped = sum(len(s.skipped_nodes) for s in stages) / sum(s.num_nodes for s in stages)
        times = interleaved({"skip": run(True), "no_skip": run(False)}, repeats, warmup, device)
        report[name] = {"share_skipped": skipped, "time_ratio": times.ratio("skip", "no_skip")}
    for stage in model.modules():
        if isinstance(stage, DAGStage):
            stage.skip_unused_nodes = True
    return report


def steady_malloc_active() -> bool:
    return all(os.environ.get(key) == value for key, value in STEADY_MALLOC.items())


def wants_steady_malloc(args) -> bool:
    return args.device == "cpu" and not args.default_malloc and sys.platform.startswith("linux")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="R-50", choices=sorted(ARCHS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument(
        "--image-size", type=int, default=512, help="shorter side (the longer is 4/3 of it)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--weights",
        default="",
        help="optional DDW checkpoint (e.g. a trained model) for the skipping figures",
    )
    parser.add_argument("--json", default="", help="write the results here")
    parser.add_argument(
        "--markdown", default="", help="write a Markdown report here (BENCHMARKS.md)"
    )
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="on CPU, time with glibc's default malloc settings",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time static and DDW with torch.compile'd backbones (the first rounds compile)",
    )
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument(
        "--amp", action="store_true", help="autocast: float16 on CUDA, bfloat16 on CPU"
    )
    return parser


def build_models(args, samples):
    """The models compared, keyed by kind, with the same weights where they share modules."""
    family = ARCHS[args.arch][0]
    kinds = (["detectron2"] if family == "resnet" else []) + ["static", "ddw", "ddw_plain"]
    models = {"static": build(args.arch, "static", args.device)}
    calibrate_norms(models["static"], samples)
    for kind in kinds:
        if kind != "static":
            models[kind] = build(args.arch, kind, args.device, reference=models["static"])
    if args.weights:
        from detectron2.checkpoint import DetectionCheckpointer

        DetectionCheckpointer(models["ddw"]).load(args.weights)
    if args.compile:
        for kind in ("static", "ddw"):
            models[f"{kind}_compiled"] = copy.deepcopy(models[kind])
            models[f"{kind}_compiled"].backbone.compile(backend=args.compile_backend)
            kinds.append(f"{kind}_compiled")
    return {kind: models[kind] for kind in kinds}


def count_model(model, samples, x):
    """Parameters (backbone, detector) and FLOPs (backbone, detector) of one model."""
    model.eval()
    inputs = [{"image": s["image"], "height": s["height"], "width": s["width"]} for s in samples]
    analysis = DetectronFlops(model, inputs)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings(
        "none"
    )
    return {
        "params": sum(p.numel() for p in model.backbone.bottom_up.parameters()),
        "params_detector": sum(p.numel() for p in model.parameters()),
        "flops_backbone": count_flops(model.backbone, (x,))["total"],
        "flops": int(analysis.total()) + aggregation_flops(model.backbone, (x,)),
    }


def time_models(models, optimizers, samples, args):
    """Interleaved timings of the training step, detector inference and backbone inference."""
    steps = {
        "train_step": {
            k: (lambda m=m, o=optimizers[k]: train_step(m, o, samples)) for k, m in models.items()
        },
        "inference": {k: (lambda m=m: inference(m, samples)) for k, m in models.items()},
        "inference_backbone": {
            k: (lambda m=m: backbone_inference(m, samples)) for k, m in models.items()
        },
    }
    return {
        key: interleaved(runs, args.repeats, args.warmup, args.device, label=key)
        for key, runs in steps.items()
    }


def operators_per_node(models, optimizers, samples, device):
    """Operators DDW adds per DAG node over the static network, for backbone inference and a
    training step: ATen operators dispatched (eager), and on CUDA kernels launched (eager and
    compiled)."""
    nodes = sum(s.num_nodes for s in models["ddw"].modules() if isinstance(s, DAGStage))
    steps = {
        "inference_backbone": lambda m, o: backbone_inference(m, samples),
        "train_step": lambda m, o: train_step(m, o, samples),
    }
    report = {"nodes": nodes}
    for key, step in steps.items():
        counts = {
            "eager": {
                k: count_dispatched(lambda k=k: step(models[k], optimizers[k]))
                for k in ("static", "ddw")
            }
        }
        if str(device).startswith("cuda"):
            for suffix in ("", "_compiled"):
                if f"ddw{suffix}" in models:
                    counts[f"kernels{suffix or '_eager'}"] = {
                        k: count_kernels(
                            lambda k=k: step(models[k + suffix], optimizers[k + suffix]), device
                        )
                        for k in ("static", "ddw")
                    }
        report[key] = {
            name: {**c, "per_node": (c["ddw"] - c["static"]) / nodes} for name, c in counts.items()
        }
    return report


def memory(model, optimizer, samples, device):
    """Peak bytes of a training step and bytes autograd saves in a training forward."""

    def forward_only():
        model.train()
        with EventStorage():
            return sum(model(samples).values())

    return {
        "peak_bytes": peak_training_bytes(model, optimizer, samples, device),
        "hook_saved_bytes": saved_bytes(forward_only),
    }


def ratios_of(results, timings):
    ddw, static = results["ddw"], results["static"]
    ratios = {
        "params": ddw["params"] / static["params"],
        "flops": ddw["flops"] / static["flops"],
        "flops_backbone": ddw["flops_backbone"] / static["flops_backbone"],
        **{key: timing.ratio("ddw", "static") for key, timing in timings.items()},
        "spread": {key: timing.spread("ddw", "static") for key, timing in timings.items()},
        "saved_bytes": ddw["peak_bytes"] / static["peak_bytes"],
        "hook_saved_bytes": ddw["hook_saved_bytes"] / static["hook_saved_bytes"],
    }
    if "ddw_compiled" in results:
        ratios["compiled"] = {
            key: timing.ratio("ddw_compiled", "static_compiled") for key, timing in timings.items()
        }
        ratios["compiled_spread"] = {
            key: timing.spread("ddw_compiled", "static_compiled") for key, timing in timings.items()
        }
    return ratios


def measure(args, models, optimizers, samples):
    """Counts, timings and memory of every model; the compiled ones are timed only."""
    eager = [kind for kind in models if not kind.endswith("_compiled")]
    x = models["static"].preprocess_image(samples).tensor
    results = {kind: count_model(models[kind], samples, x) for kind in eager}
    timings = time_models(models, optimizers, samples, args)
    for kind in models:
        medians = {key: timing.median(kind) for key, timing in timings.items()}
        results.setdefault(kind, {}).update(medians)
        if kind in eager:
            results[kind].update(memory(models[kind], optimizers[kind], samples, args.device))
    return results, timings


def main(argv=None):
    args = build_parser().parse_args(argv)
    AMP["enabled"] = args.amp
    samples = batch(args.batch_size, args.image_size, args.device)
    models = build_models(args, samples)
    optimizers = {
        k: torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=1e-5, momentum=0.9)
        for k, m in models.items()
    }
    results, timings = measure(args, models, optimizers, samples)
    malloc = ", ".join(f"{k}={v}" for k, v in STEADY_MALLOC.items())
    report = {
        "arch": args.arch,
        "device": args.device,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "repeats": args.repeats,
        "amp": args.amp,
        "compile_backend": args.compile_backend if args.compile else None,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "malloc": f"freed memory kept ({malloc})" if steady_malloc_active() else "default",
        "models": results,
        "ratios": ratios_of(results, timings),
        "operators": operators_per_node(models, optimizers, samples, args.device),
        "aggregate": aggregation_alone(args.device, args.repeats, args.warmup),
        "skipping_batch1": skipping_at_batch_one(
            models["ddw"], samples, args.repeats, args.warmup, args.device
        ),
    }
    if "detectron2" in results:
        static, reference = results["static"], results["detectron2"]
        report["static_vs_detectron2"] = {k: static[k] / reference[k] for k in ("params", "flops")}
        report["static_vs_detectron2"].update(
            {k: timings[k].ratio("static", "detectron2") for k in ("train_step", "inference")}
        )
    table = markdown_table(report)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.markdown:
        write_markdown(args.markdown, report, table, argv)


def markdown_table(report) -> str:
    models = report["models"]
    kinds = [kind for kind in models if not kind.endswith("_compiled")]
    names = {
        "detectron2": "Detectron2 static",
        "static": "ours, static",
        "ddw": "DDW (all stages)",
        "ddw_plain": "DDW, plain sums",
    }
    rows = [
        ("parameters (bottom-up)", "params", lambda v: f"{v / 1e6:.3f} M"),
        ("FLOPs (detector, inference)", "flops", lambda v: f"{v / 1e9:.2f} G"),
        ("FLOPs (backbone + FPN)", "flops_backbone", lambda v: f"{v / 1e9:.2f} G"),
        ("training step", "train_step", lambda v: f"{v * 1e3:.0f} ms"),
        ("inference (detector)", "inference", lambda v: f"{v * 1e3:.0f} ms"),
        ("inference (backbone + FPN)", "inference_backbone", lambda v: f"{v * 1e3:.0f} ms"),
        ("peak training memory", "peak_bytes", lambda v: f"{v / 2**20:.0f} MiB"),
        ("saved for backward (hooks)", "hook_saved_bytes", lambda v: f"{v / 2**20:.0f} MiB"),
    ]
    header = "| | " + " | ".join(names[k] for k in kinds) + " | DDW / static |"
    lines = [header, "|---" * (len(kinds) + 2) + "|"]
    for label, key, fmt in rows:
        ratio = report["ratios"].get(key, models["ddw"][key] / models["static"][key])
        spread = report["ratios"]["spread"].get(key)
        spread = f" ({spread[0]:.3f}-{spread[1]:.3f})" if spread else ""
        lines.append(
            f"| {label} | "
            + " | ".join(fmt(models[k][key]) for k in kinds)
            + f" | x{ratio:.3f}{spread} |"
        )
    agg = report["aggregate"]
    skip = report["skipping_batch1"]
    lines += ["", "Time ratios: median over rounds (lowest-highest round)."]
    lines += compiled_lines(report) + operator_lines(report["operators"])
    lines += [
        "",
        f"Aggregation alone ({agg['shape']}, forward + backward): buffered / plain time "
        f"x{agg['time']:.3f} "
        f"({agg['buffered_ms']:.1f} vs {agg['plain_ms']:.1f} ms), saved bytes "
        f"x{agg['saved_bytes']:.3f}.",
        "Batch-1 inference (backbone + FPN), skipping of unused nodes: "
        f"{100 * skip['own_wiring']['share_skipped']:.1f}% of nodes skipped "
        "with the model's own wiring (time with / without skipping "
        f"x{skip['own_wiring']['time_ratio']:.3f}); "
        f"{100 * skip['unused_nodes_wiring']['share_skipped']:.1f}% with a wiring that leaves "
        "every other node unused "
        f"(x{skip['unused_nodes_wiring']['time_ratio']:.3f}).",
    ]
    if "static_vs_detectron2" in report:
        s = report["static_vs_detectron2"]
        lines.append(
            f"Our static mode / Detectron2's backbone: params x{s['params']:.4f}, FLOPs "
            f"x{s['flops']:.4f}, "
            f"training step x{s['train_step']:.3f}, inference x{s['inference']:.3f}."
        )
    return "\n".join(lines)


def compiled_lines(report) -> list:
    if "compiled" not in report["ratios"]:
        return []
    models, ratios = report["models"], report["ratios"]
    cells = []
    for key, label in (
        ("train_step", "training step"),
        ("inference", "inference (detector)"),
        ("inference_backbone", "inference (backbone + FPN)"),
    ):
        low, high = ratios["compiled_spread"][key]
        cells.append(
            f"{label} {models['static_compiled'][key] * 1e3:.0f} vs "
            f"{models['ddw_compiled'][key] * 1e3:.0f} ms, x{ratios['compiled'][key]:.3f} "
            f"({low:.3f}-{high:.3f})"
        )
    backend = report["compile_backend"]
    return ["", f"Compiled backbones (torch.compile, {backend}), DDW / static: " + "; ".join(cells)]


def operator_lines(operators) -> list:
    lines = [
        "",
        f"Operators DDW adds per DAG node ({operators['nodes']} nodes) over the static network:",
    ]
    for key, label in (
        ("inference_backbone", "backbone inference"),
        ("train_step", "training step"),
    ):
        for name, counts in operators[key].items():
            lines.append(
                f"- {label}, {name.replace('_', ' ')}: {counts['per_node']:.2f} "
                f"({counts['static']} static, {counts['ddw']} DDW)"
            )
    return lines


def write_markdown(path, report, table, argv) -> None:
    command = "python scripts/benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = [
        "# Benchmarks",
        "",
        "Generated by `make bench`; every ratio is measured side by side in one process run, on",
        "random weights shared by the models: the models run in turns (the order rotating each "
        "round)",
        "after warm-up; times are medians over rounds, time ratios medians of the per-round "
        "ratios.",
        "",
        f"## {report['arch']} Faster R-CNN FPN, {report['device']}, batch {report['batch_size']}, "
        f"shorter side {report['image_size']}{', AMP' if report['amp'] else ''}",
        "",
        f"- machine: {platform.machine()}, {torch.get_num_threads()} threads ({report['machine']})",
        f"- torch {report['torch']}",
        f"- malloc: {report['malloc']}",
        f"- command: `{command}`",
        "",
        table,
        "",
    ]
    Path(path).write_text("\n".join(text))


if __name__ == "__main__":
    if wants_steady_malloc(build_parser().parse_args()) and not steady_malloc_active():
        script = str(Path(__file__).resolve())
        os.execve(
            sys.executable, [sys.executable, script, *sys.argv[1:]], {**os.environ, **STEADY_MALLOC}
        )
    main()
