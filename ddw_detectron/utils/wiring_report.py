"""The wiring report: pictures and statistics of the wiring a DDW detector gives a set of
images (``scripts/visualize_wiring.py``, the training runner's pictures, the demo report)."""

import html
import json
import logging
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from ..utils.atomic import atomic_write_text
from .html_page import escape, picture, section, write_html_page
from .visualize import CMAP, draw_adjacency
from .wiring_runs import collect_over_records, dominant_class

__all__ = [
    "save_figure",
    "wiring_summary_html",
    "summary_pictures",
    "write_wiring_pictures",
    "write_wiring_report",
]

logger = logging.getLogger(__name__)
# Spread panels run from 0 to at least this, so that a model whose images all get one wiring
# shows a flat 0, not a stretched scale; spreads under SAME_WIRING count as one wiring.
SPREAD_SCALE = 0.05
SAME_WIRING = 1e-4


def write_wiring_pictures(cfg, model, folder: Path, count: int = 4) -> int:
    """Wiring heatmaps of the first ``count`` images of ``cfg.DATASETS.TEST[0]`` into
    ``folder`` (one PNG per image, named after it); returns how many were written. The model is
    run in eval mode and left in the mode it had."""
    from detectron2.data import DatasetCatalog

    from .visualize import save_wiring

    folder.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        run = collect_over_records(cfg, model, DatasetCatalog.get(cfg.DATASETS.TEST[0]), count)
    finally:
        model.train(was_training)
    if not run.wirings:
        return 0
    for index, record in enumerate(run.records):
        name = Path(record["file_name"]).stem
        save_wiring(run.wirings, str(folder / f"{name}.png"), index, title=f"wiring of {name}")
    return len(run.records)


def write_wiring_report(
    cfg,
    model,
    records,
    output: Path,
    class_names=None,
    max_images: int = 200,
    per_image: int = 8,
    made_by: Optional[Dict[str, str]] = None,
) -> Dict:
    """Run ``model`` (eval mode) over ``records`` (at most ``max_images`` readable ones) and write
    into ``output``: ``per_image`` wiring pictures (``images/``), a grid of images side by side,
    the summary pictures, ``statistics.json`` and ``index.html`` (saying what made it:
    ``made_by``, see :func:`~ddw_detectron.utils.html_page.provenance`); returns the statistics.
    Raises ValueError when no record is a readable image."""
    from .visualize import wiring_figure, wiring_grid
    from .wiring_stats import dataset_statistics

    (output / "images").mkdir(parents=True, exist_ok=True)
    run = collect_over_records(cfg, model, records, max_images)
    wirings, kept = run.wirings, run.records
    if not kept:
        raise ValueError("no readable image among the inputs")
    labels = [dominant_class(r) for r in kept]
    labels = labels if all(label is not None for label in labels) else None
    stats = dataset_statistics(wirings, labels, class_names)
    stats["images"] = [r["file_name"] for r in kept]
    if labels is not None:
        stats["labels"] = labels
    pictures_of_images = []
    for index in range(min(per_image, len(kept))):
        name = f"images/{index:04d}_{Path(kept[index]['file_name']).stem}.png"
        name_of = Path(kept[index]["file_name"]).name
        figure = wiring_figure(wirings, index, title=name_of, image=run.images[index])
        save_figure(figure, output / name)
        pictures_of_images.append(name)
    shown = list(range(min(6, len(kept))))
    named = labels is not None and class_names
    grid_labels = [
        class_names[labels[i]] if named else Path(kept[i]["file_name"]).name for i in shown
    ]
    grid = wiring_grid(wirings, shown, [run.images[i] for i in shown], grid_labels)
    save_figure(grid, output / "grid.png")
    pictures = {
        "Images side by side": "grid.png",
        **summary_pictures(stats, wirings, labels, class_names, output),
    }
    atomic_write_text(str(output / "statistics.json"), json.dumps(stats))
    blocks = [wiring_summary_html(stats, "images")]
    blocks += [section(title, picture(name)) for title, name in pictures.items()]
    blocks.append(section("Per image", ""))
    blocks += [section(Path(name).stem, picture(name), level=3) for name in pictures_of_images]
    write_html_page(output / "index.html", "DDW wirings", blocks, made_by)
    return stats


def wiring_summary_html(stats: Dict, what: str) -> str:
    """The wiring statistics of a report: a heading, how to read the pictures, the table."""
    return "\n".join(
        [
            f"<h2>Wiring over {stats['num_images']} {escape(what)}</h2>",
            f"<p>{stats.get('distinct_patterns', 1)} distinct kept-edge patterns over all stages. "
            f"Colour map: {CMAP}, 0 (dropped) to 1; entry (i, j) is the weight of the edge from "
            "node i to node j. The chain is the edges i &rarr; i+1 (the static network's "
            "path).</p>",
            wiring_table_html(stats),
        ]
    )


def wiring_table_html(stats: Dict) -> str:
    """Per stage of :func:`~ddw_detectron.utils.wiring_stats.dataset_statistics`: nodes,
    edges kept, use of the DAG beyond the chain, patterns, diversity, class differences."""
    rows = []
    for stage, e in stats["stages"].items():
        rows.append(
            f"<tr><td>{html.escape(stage)}</td><td>{e['num_nodes']}</td><td>{e['kept']:.3f}</td>"
            f"<td>{e['non_chain_kept_share']:.3f}</td><td>{e['images_with_non_chain']:.3f}</td>"
            f"<td>{e['distinct_patterns']}</td><td>{e['diversity']:.4f}</td>"
            f"<td>{_class_difference(e)}</td></tr>"
        )
    header = (
        "<tr><th>stage</th><th>nodes</th><th>share of edges kept</th><th>kept edges off the "
        "chain</th>"
        "<th>images keeping an edge off the chain</th><th>distinct kept-edge patterns</th>"
        "<th>diversity</th><th>class-mean difference</th></tr>"
    )
    return f"<table>{header}{''.join(rows)}</table>"


def _class_difference(entry: Dict) -> str:
    """The class-mean difference, or n/a where the images have no classes."""
    value = entry.get("class_mean_difference")
    return "n/a" if value is None else f"{value:.4f}"


def save_figure(fig, path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mean_and_spread(stats, stages, output: Path) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(stages), figsize=(2.7 * len(stages), 5.4), squeeze=False)
    for column, stage in enumerate(stages):
        entry = stats["stages"][stage]
        draw_adjacency(axes[0][column], entry["edge_mean"], f"{stage}: mean")
        spread = np.asarray(entry["edge_std"])
        image = axes[1][column].imshow(
            spread, cmap="magma", vmin=0.0, vmax=max(float(spread.max()), SPREAD_SCALE),
            interpolation="nearest",
        )  # fmt: skip
        axes[1][column].set_title(f"{stage}: spread (std)", fontsize=8)
        axes[1][column].tick_params(labelsize=6)
        fig.colorbar(image, ax=axes[1][column], fraction=0.046, pad=0.04).ax.tick_params(
            labelsize=6
        )
    fig.tight_layout()
    save_figure(fig, output / "edge_mean_and_spread.png")
    return "edge_mean_and_spread.png"


def _class_means(stats, stages, output: Path) -> str:
    import matplotlib.pyplot as plt

    classes = list(stats["stages"][stages[0]]["class_mean"])
    fig, axes = plt.subplots(
        len(classes), len(stages), figsize=(2.4 * len(stages), 2.4 * len(classes)), squeeze=False
    )
    for row, name in enumerate(classes):
        for column, stage in enumerate(stages):
            draw_adjacency(
                axes[row][column], stats["stages"][stage]["class_mean"][name], f"{stage} | {name}"
            )
    fig.tight_layout()
    save_figure(fig, output / "class_mean_wiring.png")
    return "class_mean_wiring.png"


def _embedding(stats, labels, class_names, output: Path) -> str:
    import matplotlib.pyplot as plt

    points = np.asarray(stats["embedding"])
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    if labels is not None:
        for label in sorted(set(labels)):
            mask = np.asarray(labels) == label
            ax.scatter(
                points[mask, 0],
                points[mask, 1],
                s=14,
                label=class_names[label] if class_names else str(label),
            )
        ax.legend(fontsize=7)
    else:
        ax.scatter(points[:, 0], points[:, 1], s=14)
    ax.set_xlabel("wiring PC 1", fontsize=8)
    ax.set_ylabel("wiring PC 2", fontsize=8)
    ax.set_title("images embedded by their wiring", fontsize=9)
    fig.tight_layout()
    save_figure(fig, output / "embedding.png")
    return "embedding.png"


def summary_pictures(stats, wirings, labels, class_names, output: Path) -> Dict[str, str]:
    """The dataset-level pictures of :func:`dataset_statistics` output, written into
    ``output``: ``{title: file name}``."""
    stages = list(wirings)
    same = max(max(map(max, stats["stages"][s]["edge_std"])) for s in stages) < SAME_WIRING
    note = " (every image has the same wiring: an untrained or frozen model)" if same else ""
    pictures = {f"Mean and spread of every edge{note}": _mean_and_spread(stats, stages, output)}
    if labels is not None and "class_mean" in stats["stages"][stages[0]]:
        pictures["Mean wiring per dominant class"] = _class_means(stats, stages, output)
    if "embedding" in stats and len(stats["embedding"][0]) == 2:
        title = "Images embedded by their wiring (PCA)" + (
            ": one point, since every image has the same wiring" if same else ""
        )
        pictures[title] = _embedding(stats, labels, class_names, output)
    return pictures
