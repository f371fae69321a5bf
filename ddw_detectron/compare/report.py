"""The comparison's outputs: a summary over seeds (mean, standard deviation, each seed's figure,
paired differences and a verdict), a Markdown table, a JSON and a plot."""

import json
import statistics
from pathlib import Path
from typing import Dict, List, Sequence

from .runs import VARIANTS, RunSpec

__all__ = ["BENCHMARKS", "summarize", "verdict", "write_markdown", "write_plot"]

# benchmark -> (task that produces it, title, metrics shown, main metric)
BENCHMARKS = {
    "detection": (
        "detection",
        "Detection: the demo pipeline (configs/Demo/: R-34 pretrained on the shapes crops, then "
        "Faster R-CNN FPN), box AP on ddw_shapes_val",
        ("AP", "AP50", "AP75", "AP-circle", "AP-square", "AP-triangle", "AP-star"),
        "AP",
    ),
    "shapes": (
        "detection",
        "Classification: the demo's pretraining (configs/Demo/pretrain_DDW_R_34_shapes.yaml), "
        "top-1 (%) on the shapes crops after the last epoch",
        ("top1",),
        "top1",
    ),
    "digits": (
        "digits",
        "Classification: scikit-learn's digits (configs/Digits/pretrain_DDW_R_18_digits.yaml), "
        "top-1 (%) after the last epoch",
        ("top1",),
        "top1",
    ),
}
LABELS = {"static": "static", "ddw": "DDW", "frozen": "DDW, wiring frozen"}


def _spread(values: Sequence[float]) -> Dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "per_seed": list(values),
    }


def verdict(differences: Sequence[float], spreads: Sequence[float]) -> str:
    """``"ahead"`` / ``"behind"`` when every seed's paired difference has the sign of their
    mean and the mean exceeds the larger standard deviation over seeds of the two models;
    otherwise ``"tie"`` (the difference is inside the seeds' spread)."""
    mean = statistics.fmean(differences)
    if abs(mean) <= max(spreads) or not all(d * mean > 0 for d in differences):
        return "tie"
    return "ahead" if mean > 0 else "behind"


def summarize(results: Dict[str, Dict], seeds: Sequence[int], tasks: Sequence[str]) -> Dict:
    """``{benchmark: {"variants": {variant: {metric: spread}}, "paired": {...},
    "train_seconds": {variant: spread}}}`` over the seeds whose three runs finished."""
    summary = {}
    for benchmark, (task, _, metrics, main) in BENCHMARKS.items():
        if task not in tasks:
            continue
        runs = {v: [results.get(RunSpec(task, v, s).name) for s in seeds] for v in VARIANTS}
        done = [k for k in range(len(seeds)) if all(runs[v][k] for v in VARIANTS)]
        if len(done) < 2:
            continue
        value = {v: [[runs[v][k][benchmark][m] for k in done] for m in metrics] for v in VARIANTS}
        entry = {
            "seeds": [seeds[k] for k in done],
            "variants": {
                v: {m: _spread(value[v][i]) for i, m in enumerate(metrics)} for v in VARIANTS
            },
            "train_seconds": {
                v: _spread([runs[v][k]["train_seconds"][benchmark] for k in done])
                for v in ("static", "ddw")
            },
            "paired": {},
        }
        for name, (a, b) in {
            "DDW - static": ("ddw", "static"),
            "frozen - DDW": ("frozen", "ddw"),
        }.items():
            i = metrics.index(main)
            differences = [x - y for x, y in zip(value[a][i], value[b][i])]
            spreads = [entry["variants"][v][main]["std"] for v in (a, b)]
            entry["paired"][name] = {
                **_spread(differences),
                "verdict": verdict(differences, spreads),
            }
        summary[benchmark] = entry
    return summary


def _cell(spread: Dict, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{spread['mean']:{sign}.2f} ± {spread['std']:.2f}"


def _benchmark_table(benchmark: str, entry: Dict, costs: Dict) -> List[str]:
    _, title, metrics, main = BENCHMARKS[benchmark]
    header = ["model", *metrics, f"{main} per seed", "params (M)", "MFLOPs", "train time (s)"]
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant in VARIANTS:
        figures = entry["variants"][variant]
        cost = costs.get(benchmark, {}).get(variant, {})
        seconds = entry["train_seconds"].get(variant)
        cells = [
            LABELS[variant],
            *(_cell(figures[m]) for m in metrics),
            ", ".join(f"{x:.2f}" for x in figures[main]["per_seed"]),
            f"{cost['params'] / 1e6:.2f}" if cost else "",
            f"{cost['flops'] / 1e6:.1f}" if cost else "",
            _cell(seconds).replace(".00", "") if seconds else "(not retrained)",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for name, paired in entry["paired"].items():
        per_seed = ", ".join(f"{x:+.2f}" for x in paired["per_seed"])
        lines.append(
            f"| **{name}** ({main}, paired) | {_cell(paired, True)} | per seed {per_seed} | "
            f"**{paired['verdict']}** |" + " |" * (len(header) - 4)
        )
    return lines


def _wiring_table(results: Dict[str, Dict], seeds: Sequence[int]) -> List[str]:
    header = [
        "seed",
        "images",
        "set",
        "distinct patterns",
        "stage",
        "diversity",
        "kept",
        "non-chain share of kept",
        "class difference",
        "dead nodes (FLOPs share)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for seed in seeds:
        frozen = results.get(RunSpec("detection", "frozen", seed).name)
        for dataset, summary in (frozen or {}).get("wiring", {}).items():
            for stage, figures in summary["stages"].items():
                dead = figures["dead_nodes"]
                share = f"{100 * figures['dead_flops_share']:.1f}%"
                cells = [
                    str(seed),
                    str(summary["images"]),
                    dataset,
                    str(summary["distinct_patterns"]),
                    stage,
                    f"{figures['diversity']:.3f}",
                    f"{figures['kept']:.2f}",
                    f"{figures['non_chain_kept_share']:.2f}",
                    f"{figures['class_mean_difference']:.3f}"
                    if "class_mean_difference" in figures
                    else "",
                    f"{dead} ({share})" if dead else "none",
                ]
                lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_markdown(path: Path, summary: Dict, costs: Dict, results: Dict, seeds, preamble):
    """The tables of ``summary`` (and the DDW detectors' wiring) after ``preamble`` lines."""
    lines = list(preamble)
    for benchmark, entry in summary.items():
        lines += ["", *_benchmark_table(benchmark, entry, costs)]
    if "detection" in summary:
        lines += ["", "### Wiring of the trained DDW detectors", "", *_wiring_table(results, seeds)]
    Path(path).write_text("\n".join(lines) + "\n")


def write_json(path: Path, summary: Dict, costs: Dict, results: Dict, command: str) -> None:
    document = {"command": command, "summary": summary, "costs": costs, "runs": results}
    Path(path).write_text(json.dumps(document, indent=2))


def write_plot(path: Path, summary: Dict) -> None:
    """One panel per benchmark: each seed's figure of the main metric per model, and the mean
    with the standard deviation over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, max(1, len(summary)), figsize=(4.2 * max(1, len(summary)), 3.6))
    axes = [axes] if len(summary) <= 1 else list(axes)
    for ax, (benchmark, entry) in zip(axes, summary.items()):
        main = BENCHMARKS[benchmark][3]
        for x, variant in enumerate(VARIANTS):
            spread = entry["variants"][variant][main]
            points = spread["per_seed"]
            offsets = [x + 0.08 * (k - (len(points) - 1) / 2) for k in range(len(points))]
            ax.scatter(offsets, points, s=18, color="0.55", zorder=2)
            ax.errorbar(
                x + 0.3,
                spread["mean"],
                yerr=spread["std"],
                fmt="o",
                color="C3",
                capsize=4,
                zorder=3,
            )
        ax.set_xticks(range(len(VARIANTS)), [LABELS[v] for v in VARIANTS], fontsize=8)
        ax.set_title(f"{benchmark}: {main}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("per seed (grey) and mean ± std over seeds (red)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _preamble(summary: Dict, command: str, figure: str) -> List[str]:
    import platform

    import detectron2
    import torch

    lines = [
        "# Does dynamic wiring help?",
        "",
        f"Generated by `{command}` ({platform.machine()}, {__import__('os').cpu_count()} CPU "
        f"cores, torch {torch.__version__}, detectron2 {detectron2.__version__}).",
        "",
    ]
    for benchmark, entry in summary.items():
        paired = entry["paired"]["DDW - static"]
        frozen = entry["paired"]["frozen - DDW"]
        main = BENCHMARKS[benchmark][3]
        lines.append(
            f"- **{benchmark}** ({main}, {len(entry['seeds'])} seeds): DDW - static "
            f"{_cell(paired, True)} (**{paired['verdict']}**); frozen wiring - DDW "
            f"{_cell(frozen, True)} (**{frozen['verdict']}**)."
        )
    lines += [
        "",
        "Each model of a seed has the same recipe, budget, data order and seed. *static*: "
        "`MODEL.DDW.DYNAMIC_STAGES []` (the base network); *DDW*: the dynamic backbone; *DDW, "
        "wiring frozen*: the trained DDW model with every stage fixed to its mean wiring over the "
        "training set, evaluated without retraining. Figures: mean ± standard deviation over "
        "seeds (n - 1), then each seed's figure; paired rows: per-seed differences. Verdict: "
        "*ahead* or *behind* only when every seed agrees in sign and the mean difference exceeds "
        "the larger standard deviation of the two models; otherwise *tie*. FLOPs: one image at "
        "test size through the detector's backbone + FPN, or through the classifier (every DAG "
        "edge counted). Train time: pretraining epochs including their evaluation; detection "
        "iterations from `metrics.json`.",
        "",
        f"![per seed and mean over seeds]({figure})",
    ]
    return lines


def write_outputs(comparison, results: Dict, command: str, evidence=None) -> Dict:
    """``comparison.md``, ``comparison.json`` and ``comparison.png`` into the comparison's
    folder, and with ``evidence`` the Markdown at that path too (its figure copied to
    ``docs/evidence_comparison.png`` beside it). Returns the summary."""
    import shutil

    from .frozen import model_costs

    output = comparison.output
    summary = summarize(results, comparison.seeds, comparison.tasks)
    costs = model_costs(comparison)
    write_plot(output / "comparison.png", summary)
    write_json(output / "comparison.json", summary, costs, results, command)
    tables = (summary, costs, results, comparison.seeds)
    write_markdown(output / "comparison.md", *tables, _preamble(summary, command, "comparison.png"))
    if evidence is not None:
        evidence = Path(evidence)
        figure = Path("docs") / "evidence_comparison.png"
        (evidence.parent / "docs").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(output / "comparison.png", evidence.parent / figure)
        write_markdown(evidence, *tables, _preamble(summary, command, str(figure)))
    return summary
