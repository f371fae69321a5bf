"""The comparison's outputs: a summary over seeds (each arm's mean, standard deviation and
per-seed figures; paired differences with their 95% confidence interval and verdict), a
Markdown document, a JSON and a plot."""

import json
import math
from pathlib import Path
from typing import Dict, List, Sequence

from ddw_detectron.utils.atomic import atomic_write_text
from ddw_lab.compare.arms import ARMS, CONTRASTS, PRETRAINING
from ddw_lab.compare.stats import paired_difference, spread

__all__ = ["METRICS", "summarize", "write_outputs"]

# task -> (metrics shown, the main metric, whether higher is better for each).
METRICS = {
    "classification": (("top1", "val_loss", "changed_predictions"), "top1"),
    "detection": (("AP", "AP50", "AP75"), "AP"),
}
LOWER_IS_BETTER = {"val_loss"}
# A collapse, by what happened (docs/method.md): a classification run whose wiring cut at least
# this share (%) of the validation images off from the image, or whose validation loss ended at
# chance (at least this share of ln 16); a detection run under this AP.
COLLAPSED_IMAGES = 5.0
CHANCE_LOSS = 0.95 * math.log(16)
COLLAPSE_AP = 1.0
COLLAPSE_RULE = {
    "classification": f"the wiring cut at least {COLLAPSED_IMAGES:.0f}% of the validation images "
    f"off from the image, or the validation loss ended at chance, >= {CHANCE_LOSS:.2f}",
    "detection": f"AP under {COLLAPSE_AP:.0f}",
}
TITLES = {
    "classification": (
        "Classification: ddw_mixed (16 classes, 5,000 validation images), narrow ResNet-50 from "
        "scratch (configs/Mixed/pretrain_DDW_R_50_narrow_mixed.yaml); top-1 (%) and "
        "cross-entropy on the validation set after the last epoch"
    ),
    "detection": (
        "Detection: the demo's recipe (configs/Demo/: ResNet-34 pretrained on the shapes crops, "
        "then Faster R-CNN FPN), box AP on ddw_shapes_test (512 generated images)"
    ),
}


def _complete_seeds(results: Dict, task: str, seeds: Sequence[int]) -> List[int]:
    names = [a.name for a in ARMS[task]]
    return [s for s in seeds if all(f"{task}/{n}/seed{s}" in results for n in names)]


def summarize(results: Dict[str, Dict], seeds: Dict[str, Sequence[int]]) -> Dict:
    """``{task: {"seeds", "arms": {arm: {metric: spread}}, "contrasts": {"a - b": {metric:
    paired}}}}`` over the seeds whose every arm finished (tasks with fewer than 2 left out)."""
    summary = {}
    for task, (metrics, _) in METRICS.items():
        done = _complete_seeds(results, task, seeds.get(task, ()))
        if len(done) < 2:
            continue
        value = {
            a.name: {m: [results[f"{task}/{a.name}/seed{s}"].get(m) for s in done] for m in metrics}
            for a in ARMS[task]
        }
        arms = {
            name: {m: spread(v) for m, v in figures.items() if None not in v}
            for name, figures in value.items()
        }
        contrasts = {}
        for a, b in CONTRASTS[task]:
            contrasts[f"{a} - {b}"] = {
                m: paired_difference(value[a][m], value[b][m], m not in LOWER_IS_BETTER)
                for m in metrics
                if None not in value[a][m] and None not in value[b][m]
            }
        collapsed = {
            a.name: [s for s in done if is_collapse(task, results[f"{task}/{a.name}/seed{s}"])]
            for a in ARMS[task]
        }
        summary[task] = {"seeds": done, "arms": arms, "contrasts": contrasts}
        summary[task]["collapsed"] = {k: v for k, v in collapsed.items() if v}
        summary[task]["contrasts_without_collapses"] = _without_collapses(
            task, done, value, collapsed
        )
        summary[task]["train_seconds"] = {
            a.name: spread([results[f"{task}/{a.name}/seed{s}"]["train_seconds"] for s in done])
            for a in ARMS[task]
            if a.of is None
        }
        if task == "detection":
            summary[task]["pretraining_top1"] = {
                name: spread([results[f"{task}/pretrain-{name}/seed{s}"]["top1"] for s in done])
                for name in dict.fromkeys(PRETRAINING.values())
            }
    return summary


def is_collapse(task: str, result: Dict) -> bool:
    """Whether a run's ``result`` shows a collapse (see :data:`COLLAPSED_IMAGES`)."""
    if task == "detection":
        return result["AP"] < COLLAPSE_AP
    return (
        result.get("val_disconnected", 0.0) >= COLLAPSED_IMAGES or result["val_loss"] >= CHANCE_LOSS
    )


def _without_collapses(task, seeds, value, collapsed) -> Dict:
    """The main metric's paired differences over the seeds where neither arm collapsed (a
    post-hoc, descriptive view: which seeds collapse is itself a result)."""
    main = METRICS[task][1]
    result = {}
    for a, b in CONTRASTS[task]:
        keep = [k for k, s in enumerate(seeds) if s not in collapsed[a] + collapsed[b]]
        if len(keep) >= 2 and len(keep) < len(seeds):
            pairs = [value[a][main][k] for k in keep], [value[b][main][k] for k in keep]
            entry = paired_difference(*pairs)
            result[f"{a} - {b}"] = {**entry, "seeds": [seeds[k] for k in keep]}
    return result


def _cell(entry: Dict, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{entry['mean']:{sign}.2f} ± {entry['std']:.2f}"


def _arms_table(task: str, entry: Dict) -> List[str]:
    metrics, main = METRICS[task]
    shown = [m for m in metrics if any(m in f for f in entry["arms"].values())]
    header = ["arm", *shown, f"{main} per seed (collapsed in bold)", "collapsed", "train time (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm in ARMS[task]:
        figures = entry["arms"][arm.name]
        seconds = entry["train_seconds"].get(arm.name)
        collapsed = entry.get("collapsed", {}).get(arm.name, [])
        per_seed = [
            f"**{x:.2f}**" if seed in collapsed else f"{x:.2f}"
            for seed, x in zip(entry["seeds"], figures[main]["per_seed"])
        ]
        cells = [
            arm.label,
            *(_cell(figures[m]) if m in figures else "" for m in shown),
            ", ".join(per_seed),
            f"{len(collapsed)} of {len(entry['seeds'])}",
            f"{seconds['mean']:.0f}" if seconds else "(not retrained)",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _contrast_table(task: str, entry: Dict) -> List[str]:
    header = ["paired difference", "metric", "mean ± std", "95% interval", "per seed", "verdict"]
    header.append("resolvable at 80% power")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    labels = {a.name: a.label for a in ARMS[task]}
    main_metrics = METRICS[task][0][:2]
    for name, by_metric in entry["contrasts"].items():
        a, b = name.split(" - ")
        for metric in (m for m in main_metrics if m in by_metric):
            paired = by_metric[metric]
            low, high = paired["ci95"]
            cells = [
                f"{labels[a]} - {labels[b]}",
                metric,
                _cell(paired, True),
                f"[{low:+.2f}, {high:+.2f}]",
                ", ".join(f"{x:+.2f}" for x in paired["per_seed"]),
                f"**{paired['verdict']}**",
                f"{paired['resolvable']:.2f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_markdown(summary: Dict, command: str, path: Path, plot: str) -> None:
    lines = [
        "# Does dynamic wiring help?",
        "",
        f"Made by `{command}` (`make compare`; {_machine_note()}).",
        "Every arm of a seed shares the recipe, budget, data order and seed; the differences are",
        "paired by seed, with a Student-t 95% confidence interval over seeds. A verdict says",
        '"ahead" or "behind" only when that interval excludes 0. "Resolvable" is the smallest',
        "true difference these seeds, with this spread, detect at 95% confidence and 80% power.",
        "",
    ]
    for task, entry in summary.items():
        lines += [f"## {TITLES[task]}", "", f"Seeds: {', '.join(map(str, entry['seeds']))}.", ""]
        lines += _arms_table(task, entry) + [""] + _contrast_table(task, entry) + [""]
        lines += _collapse_lines(task, entry)
        if "pretraining_top1" in entry:
            shapes = ", ".join(
                f"{name} {_cell(s)}" for name, s in entry["pretraining_top1"].items()
            )
            lines += [f"Pretraining top-1 on the shapes crops (694 images): {shapes}.", ""]
    lines += [f"![The comparison]({plot})", ""]
    atomic_write_text(str(path), "\n".join(lines))


def _collapse_lines(task: str, entry: Dict) -> List[str]:
    if not entry.get("collapsed"):
        return []
    labels = {a.name: a.label for a in ARMS[task]}
    runs = "; ".join(
        f"{labels[name]}: seed {', '.join(map(str, seeds))}"
        for name, seeds in entry["collapsed"].items()
    )
    lines = [
        f"Collapsed runs ({COLLAPSE_RULE[task]}): {runs}.",
        "",
    ]
    if entry["contrasts_without_collapses"]:
        lines += [
            "Post hoc, without the seeds where either arm collapsed (descriptive):",
            "",
            "| paired difference | seeds | mean ± std | 95% interval | verdict |",
            "|---|---|---|---|---|",
        ]
        for name, paired in entry["contrasts_without_collapses"].items():
            a, b = name.split(" - ")
            low, high = paired["ci95"]
            lines.append(
                f"| {labels[a]} - {labels[b]} | {', '.join(map(str, paired['seeds']))} | "
                f"{_cell(paired, True)} | [{low:+.2f}, {high:+.2f}] | {paired['verdict']} |"
            )
        lines.append("")
    return lines


def _machine_note() -> str:
    import platform

    import torch

    return f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def write_plot(summary: Dict, path: Path) -> None:
    """One panel per task: each arm's main metric per seed (dots) and mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, max(1, len(summary)), figsize=(6.5 * len(summary), 4.2))
    axes = [axes] if len(summary) == 1 else list(axes)
    for ax, (task, entry) in zip(axes, summary.items()):
        main = METRICS[task][1]
        arms = ARMS[task]
        for x, arm in enumerate(arms):
            values = entry["arms"][arm.name][main]["per_seed"]
            ax.scatter([x] * len(values), values, s=18, color="tab:blue", alpha=0.6)
            ax.hlines(sum(values) / len(values), x - 0.3, x + 0.3, color="black")
        ax.set_xticks(range(len(arms)))
        ax.set_xticklabels([a.name for a in arms], rotation=25, ha="right")
        ax.set_ylabel(main)
        ax.set_title(f"{task}: {main} per seed (line: mean)")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(comparison, results: Dict, command: str, evidence=None) -> Dict:
    """``comparison.md``, ``comparison.json`` and ``comparison.png`` into the output folder
    (and the Markdown to ``evidence`` with its plot under ``docs/`` beside it); returns the
    summary."""
    summary = summarize(results, comparison.seeds)
    output = comparison.output
    atomic_write_text(
        str(output / "comparison.json"),
        json.dumps({"command": command, "summary": summary, "runs": results}, indent=2),
    )
    if not summary:
        return summary
    write_plot(summary, output / "comparison.png")
    write_markdown(summary, command, output / "comparison.md", "comparison.png")
    if evidence:
        evidence = Path(evidence)
        docs = evidence.parent / "docs"
        docs.mkdir(parents=True, exist_ok=True)
        write_plot(summary, docs / "evidence_comparison.png")
        write_markdown(summary, command, evidence, "docs/evidence_comparison.png")
    return summary
