"""The benchmark's report as Markdown: the side-by-side table and the lines under it."""

import platform
from pathlib import Path
from typing import Dict, List

import torch

__all__ = ["markdown_table", "write_markdown"]

NAMES = {
    "detectron2": "Detectron2 static",
    "static": "ours, static",
    "ddw": "DDW (all stages)",
    "ddw_plain": "DDW, plain sums",
}
ROWS = (
    ("parameters (bottom-up)", "params", lambda v: f"{v / 1e6:.3f} M"),
    ("FLOPs (detector, inference)", "flops", lambda v: f"{v / 1e9:.2f} G"),
    ("FLOPs (backbone + FPN)", "flops_backbone", lambda v: f"{v / 1e9:.2f} G"),
    ("training step", "train_step", lambda v: f"{v * 1e3:.0f} ms"),
    ("inference (detector)", "inference", lambda v: f"{v * 1e3:.0f} ms"),
    ("inference (backbone + FPN)", "inference_backbone", lambda v: f"{v * 1e3:.0f} ms"),
    ("peak training memory", "peak_bytes", lambda v: f"{v / 2**20:.0f} MiB"),
    ("saved for backward (hooks)", "hook_saved_bytes", lambda v: f"{v / 2**20:.0f} MiB"),
)
STEP_LABELS = (
    ("train_step", "training step"),
    ("inference", "inference (detector)"),
    ("inference_backbone", "inference (backbone + FPN)"),
)


def _kernels(report: Dict) -> List[str]:
    """The extra aggregation kernels DDW was timed with (``ddw_<kernel>`` models)."""
    return list(report["ratios"].get("kernels", {}))


def _table_lines(report: Dict) -> List[str]:
    models = report["models"]
    extra = {f"ddw_{kernel}" for kernel in _kernels(report)}
    kinds = [kind for kind in models if not kind.endswith("_compiled") and kind not in extra]
    header = "| | " + " | ".join(NAMES[k] for k in kinds) + " | DDW / static |"
    lines = [header, "|---" * (len(kinds) + 2) + "|"]
    for label, key, fmt in ROWS:
        ratio = report["ratios"].get(key, models["ddw"][key] / models["static"][key])
        spread = report["ratios"]["spread"].get(key)
        spread = f" ({spread[0]:.3f}-{spread[1]:.3f})" if spread else ""
        cells = " | ".join(fmt(models[k][key]) for k in kinds)
        lines.append(f"| {label} | {cells} | x{ratio:.3f}{spread} |")
    return lines


def _aggregation_and_skipping_lines(report: Dict) -> List[str]:
    agg, skip = report["aggregate"], report["skipping_batch1"]
    own, unused = skip["own_wiring"], skip["unused_nodes_wiring"]
    return [
        "",
        f"Aggregation alone ({agg['shape']}, forward + backward): buffered / plain time "
        f"x{agg['time']:.3f} ({agg['buffered_ms']:.1f} vs {agg['plain_ms']:.1f} ms), saved bytes "
        f"x{agg['saved_bytes']:.3f}.",
        "Batch-1 inference (backbone + FPN), skipping of unused nodes: "
        f"{100 * own['share_skipped']:.1f}% of nodes skipped with the model's own wiring (time "
        f"with / without skipping x{own['time_ratio']:.3f}); "
        f"{100 * unused['share_skipped']:.1f}% with a wiring that leaves every other node unused "
        f"(x{unused['time_ratio']:.3f}).",
    ]


def _compiled_lines(report: Dict) -> List[str]:
    if "compiled" not in report["ratios"]:
        return []
    models, ratios = report["models"], report["ratios"]
    cells = []
    for key, label in STEP_LABELS:
        low, high = ratios["compiled_spread"][key]
        cells.append(
            f"{label}: static {models['static_compiled'][key] * 1e3:.0f} ms, DDW "
            f"{models['ddw_compiled'][key] * 1e3:.0f} ms, DDW / static "
            f"x{ratios['compiled'][key]:.3f} ({low:.3f}-{high:.3f})"
        )
    backend = report["compile_backend"]
    return ["", f"Compiled backbones (torch.compile, {backend}): " + "; ".join(cells)]


def _operator_lines(operators: Dict) -> List[str]:
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


def _floor_cell(ratio: float, floor: float) -> str:
    """The floor, and the excess over 1 of the ratio as a multiple of the floor's."""
    excess = (ratio - 1) / (floor - 1) if floor > 1 else float("inf")
    return f"x{floor:.3f} | {excess:.1f}"


def _setting_row(
    setting: str, step: str, eager: Dict, compiled: Dict, memory: str, kernels: List[str]
) -> str:
    """One row: ``eager`` and ``compiled`` hold ``ratio``, ``floor`` (and eager ``spread``);
    ``compiled`` is empty without compiled models; ``eager["kernels"]`` the ratio of DDW with each
    of ``kernels``."""
    low, high = eager["spread"]
    cells = [
        setting,
        step,
        f"x{eager['ratio']:.3f} ({low:.3f}-{high:.3f})",
        _floor_cell(eager["ratio"], eager["floor"]),
        *(f"x{eager['kernels'][kernel]:.3f}" for kernel in kernels),
        f"x{compiled['ratio']:.3f}" if compiled else "",
        f"x{compiled['floor']:.3f}" if compiled else "",
        memory,
    ]
    return "| " + " | ".join(cells) + " |"


def _detection_setting(report: Dict) -> str:
    amp = ", AMP" if report.get("amp") else ""
    return (
        f"{report['arch']} Faster R-CNN FPN, {report['image_size']} px, batch "
        f"{report['batch_size']}{amp}"
    )


def _detection_rows(report: Dict, kernels: List[str]) -> List[str]:
    ratios, floors = report["ratios"], report["floors"]
    setting = _detection_setting(report)
    rows = []
    steps = (("train_step", "training step"), ("inference_backbone", "inference (backbone + FPN)"))
    for key, label in steps:
        eager = {
            "ratio": ratios[key],
            "spread": ratios["spread"][key],
            "floor": floors["eager"][key],
            "kernels": {k: ratios["kernels"][k][key] for k in kernels},
        }
        compiled = {}
        if "compiled" in ratios:
            compiled = {"ratio": ratios["compiled"][key], "floor": floors["compiled"][key]}
        training = key == "train_step"
        rows.append(
            _setting_row(
                setting if training else "",
                label,
                eager,
                compiled,
                f"x{ratios['saved_bytes']:.3f}" if training else "",
                kernels,
            )
        )
    return rows


def _classification_rows(report: Dict, kernels: List[str]) -> List[str]:
    rows = []
    for name, setting in report.get("classification", {}).items():
        for step, entry in setting["steps"].items():
            entry = {**entry, "kernels": {k: entry["kernels"][k]["ratio"] for k in kernels}}
            compiled = {}
            if "compiled_ratio" in entry:
                compiled = {"ratio": entry["compiled_ratio"], "floor": entry["compiled_floor"]}
            training = step == "train_step"
            rows.append(
                _setting_row(
                    f"{name} (`{setting['config']}`)" if training else "",
                    step.replace("_", " "),
                    entry,
                    compiled,
                    f"x{setting['peak_memory_ratio']:.3f}" if training else "",
                    kernels,
                )
            )
    return rows


def settings_table(report: Dict) -> List[str]:
    """Every setting in one table: DDW / static eager (rounds' spread), its floor, how many
    floors' excess the eager ratio costs, compiled DDW / static beside its own floor (the same
    bytes over the compiled static step), peak training memory."""
    kernels = _kernels(report)
    columns = [
        "setting",
        "step",
        "eager DDW / static",
        "floor",
        "eager excess / floor excess",
        *(f"eager DDW / static, {kernel} kernel" for kernel in kernels),
        "compiled DDW / static",
        "compiled floor",
        "peak training memory",
    ]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    lines += _detection_rows(report, kernels) + _classification_rows(report, kernels)
    lines += [
        "",
        f"Floor: the bytes the aggregation and routers must move (ddw_lab.benchmark."
        f"floor) at this machine's copy bandwidth ({report.get('bandwidth', 0) / 1e9:.1f} GB/s) "
        "over the static step's time, plus 1; the compiled floor divides the same bytes by the "
        "compiled static step's time.",
    ]
    return lines


def markdown_table(report: Dict) -> str:
    """The side-by-side table (a column per eager model, DDW / static with the rounds' spread)
    and the compiled, operator, aggregation and skipping figures under it."""
    lines = settings_table(report)
    if report.get("light"):
        return "\n".join(lines + ["", "Time ratios: median over rounds (lowest-highest round)."])
    lines += ["", "### The detector in detail", ""] + _table_lines(report)
    lines += ["", "Time ratios: median over rounds (lowest-highest round)."]
    lines += _compiled_lines(report) + _operator_lines(report["operators"])
    lines += _aggregation_and_skipping_lines(report)
    if "static_vs_detectron2" in report:
        s = report["static_vs_detectron2"]
        lines.append(
            f"Our static mode / Detectron2's backbone: params x{s['params']:.4f}, FLOPs "
            f"x{s['flops']:.4f}, training step x{s['train_step']:.3f}, inference "
            f"x{s['inference']:.3f}."
        )
    return "\n".join(lines)


def write_markdown(path: str, report: Dict, command: str) -> None:
    """BENCHMARKS.md: how the figures are measured, the run's settings and command, the table."""
    amp = ", AMP" if report["amp"] else ""
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
        f"shorter side {report['image_size']}{amp}",
        "",
        f"- machine: {platform.machine()}, {torch.get_num_threads()} threads ({report['machine']})",
        f"- torch {report['torch']}",
        f"- malloc: {report['malloc']}",
        f"- command: `{command}`",
        "",
        markdown_table(report),
        "",
    ]
    Path(path).write_text("\n".join(text))


def write_benchmark(options, json_path: str, markdown_path: str, command: str) -> Dict:
    """Run the benchmark of ``options`` (a ``BenchmarkOptions``), print its table and write the
    JSON and the Markdown report (either path may be empty); returns the report."""
    import json

    from ddw_detectron.utils.atomic import atomic_write_text
    from ddw_lab.benchmark.measure import run_benchmark

    report = run_benchmark(options)
    print(markdown_table(report), flush=True)
    if json_path:
        atomic_write_text(json_path, json.dumps(report, indent=2))
    if markdown_path:
        write_markdown(markdown_path, report, command)
    return report
