"""The aggregation alone, by kernel: the eager one against the fused Triton one, at the node
shapes of the settings GPU users train with, under AMP's precision. The measurement that
chooses ``AUTO_KERNELS`` for a device (docs/cost.md)."""

from typing import Dict, Tuple

import torch

from ddw_detectron.layers import aggregate
from ddw_lab.benchmark.timing import interleaved

__all__ = ["DRY_SHAPES", "SHAPES", "kernels_markdown", "measure_kernels"]

# name: (batch, channels, height, width, incoming edges k, channels_last)
SHAPES: Dict[str, Tuple[int, int, int, int, int, bool]] = {
    "detector res2, 800 px, batch 2, k=3": (2, 256, 200, 272, 3, False),
    "detector res2, 800 px, batch 8, k=2": (8, 256, 200, 272, 2, False),
    "R-50 res2, 224 px, batch 128, k=2": (128, 256, 56, 56, 2, True),
    "R-50 res4, 224 px, batch 128, k=5": (128, 1024, 14, 14, 5, True),
    "MobileNetV2 mb3, 224 px, batch 256, k=2": (256, 32, 28, 28, 2, True),
}
DRY_SHAPES = {"tiny, k=3": (2, 4, 8, 8, 3, True), "tiny, k=9": (2, 3, 5, 7, 9, False)}


def _inputs(shape, device, dtype):
    batch, channels, height, width, k, channels_last = shape
    g = torch.Generator(device=device).manual_seed(0)
    features = []
    for _ in range(k):
        f = torch.randn(batch, channels, height, width, device=device, dtype=dtype, generator=g)
        if channels_last:
            f = f.contiguous(memory_format=torch.channels_last)
        features.append(f.requires_grad_())
    weights = torch.rand(batch, k, device=device, generator=g)
    weights[:, 0] = 0.0  # an edge dropped for every sample, as the gate leaves some
    grad = torch.randn_like(features[0])
    return features, weights.requires_grad_(), grad


def _steps(features, weights, grad, kernel: str):
    def forward():
        with torch.no_grad():
            aggregate(features, weights, kernel=kernel)

    def train():
        aggregate(features, weights, kernel=kernel).backward(grad)

    return forward, train


def _difference(features, weights, grad) -> float:
    """Largest difference of the Triton kernel's output and weight gradient from the eager
    kernel's, relative to the eager values' largest magnitude."""
    results = {}
    for kernel in ("eager", "triton"):
        weights.grad = None
        out = aggregate(features, weights, kernel=kernel)
        out.backward(grad)
        results[kernel] = (out.detach().float(), weights.grad.clone())
    (out_e, w_e), (out_t, w_t) = results["eager"], results["triton"]
    return max(
        float((out_t - out_e).abs().max() / out_e.abs().max().clamp_min(1e-12)),
        float((w_t - w_e).abs().max() / w_e.abs().max().clamp_min(1e-12)),
    )


def measure_kernels(device: str, dtype, repeats: int, warmup: int, shapes=None) -> Dict:
    """``{shape name: {"forward"|"train": {"eager_ms", "triton_ms", "ratio"}, "difference"}}``:
    interleaved medians, triton / eager."""
    report = {}
    for name, shape in (shapes or SHAPES).items():
        features, weights, grad = _inputs(shape, device, dtype)
        fns = {k: _steps(features, weights, grad, k) for k in ("eager", "triton")}
        entry = {"shape": list(shape), "difference": _difference(features, weights, grad)}
        for index, step in enumerate(("forward", "train")):
            runs = {kernel: fns[kernel][index] for kernel in fns}
            timings = interleaved(runs, repeats, warmup, device, f"{name}: {step}")
            entry[step] = {
                "eager_ms": timings.median("eager") * 1e3,
                "triton_ms": timings.median("triton") * 1e3,
                "ratio": timings.ratio("triton", "eager"),
            }
        report[name] = entry
        del features, weights, grad
    return report


def kernels_markdown(report: Dict, dtype: str) -> str:
    """The kernel comparison as a Markdown table."""
    lines = [
        f"| node input ({dtype}) | forward: eager / triton (ms) | triton / eager | training: "
        "eager / triton (ms) | triton / eager | largest relative difference |",
        "|---|---|---|---|---|---|",
    ]
    for name, e in report.items():
        f, t = e["forward"], e["train"]
        lines.append(
            f"| {name} | {f['eager_ms']:.3f} / {f['triton_ms']:.3f} | x{f['ratio']:.3f} | "
            f"{t['eager_ms']:.3f} / {t['triton_ms']:.3f} | x{t['ratio']:.3f} | "
            f"{e['difference']:.1e} |"
        )
    return "\n".join(lines)
