"""The demo's report: one ``index.html`` with the AP table, training curves, validation images
with ground truth and detections side by side, each image's wiring, and the dataset's wiring
statistics. Pictures are drawn with Detectron2's ``Visualizer`` and this package's wiring
helpers."""

import html
import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from .visualize import CMAP
from .wiring_report import save_figure, wiring_table_html

__all__ = [
    "read_json_lines",
    "plot_curves",
    "draw_detections",
    "ap_table_html",
    "write_report_html",
]


def read_json_lines(path: Path) -> List[Dict]:
    """Every JSON object of a JSON-lines file (``metrics.json``, ``log.jsonl``); [] if absent."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _plot_series(ax, records, keys: Sequence[str], x_key: str, title: str) -> bool:
    drawn = False
    for key in keys:
        points = [(r[x_key], r[key]) for r in records if key in r and x_key in r]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, label=key, linewidth=1.2)
            drawn = True
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(x_key, fontsize=8)
    ax.tick_params(labelsize=7)
    if drawn:
        ax.legend(fontsize=6)
    return drawn


def plot_curves(metrics: List[Dict], pretrain_log: List[Dict], path: Path) -> None:
    """Detection losses and learning rate, the ``ddw/*`` telemetry, and pretraining loss and
    top-1 per epoch, in one picture."""
    import matplotlib.pyplot as plt

    losses = sorted({k for r in metrics for k in r if k.startswith("loss_") or k == "total_loss"})
    kept = sorted(
        {
            k
            for r in metrics
            for k in r
            if k.startswith("ddw/") and k.endswith(("/kept", "/non_chain_kept_share"))
        }
    )
    diversity = sorted(
        {k for r in metrics for k in r if k.startswith("ddw/") and k.endswith("/diversity")}
    )
    fig, axes = plt.subplots(1, 5, figsize=(22, 3.8))
    _plot_series(axes[0], metrics, losses, "iteration", "detection losses")
    _plot_series(axes[1], metrics, ["lr"], "iteration", "learning rate")
    _plot_series(
        axes[2], metrics, kept, "iteration", "share of edges kept / kept edges off the chain"
    )
    _plot_series(axes[3], metrics, diversity, "iteration", "wiring diversity in the batch")
    _plot_series(
        axes[4],
        pretrain_log,
        ["top1", "train_loss"],
        "epoch",
        "pretraining: val top-1 (%), train loss",
    )
    fig.tight_layout()
    save_figure(fig, path)


def draw_detections(
    image: np.ndarray, record: Dict, prediction: Dict, metadata, score_threshold: float
) -> np.ndarray:
    """``[H, 2W + gap, 3]``: ground truth (left) and detections scoring at least
    ``score_threshold`` (right), drawn by Detectron2's ``Visualizer``."""
    from detectron2.utils.visualizer import Visualizer

    truth = Visualizer(image, metadata, scale=2.0).draw_dataset_dict(record).get_image()
    instances = prediction["instances"]
    instances = instances[instances.scores >= score_threshold]
    detected = (
        Visualizer(image, metadata, scale=2.0).draw_instance_predictions(instances).get_image()
    )
    gap = np.full((truth.shape[0], 8, 3), 255, dtype=np.uint8)
    return np.concatenate([truth, gap, detected], axis=1)


def ap_table_html(bbox: Dict[str, float], class_names: Sequence[str]) -> str:
    """Overall COCO box metrics and per-class AP as HTML tables."""
    overall = [k for k in ("AP", "AP50", "AP75", "APs", "APm", "APl") if k in bbox]
    head = "".join(f"<th>{k}</th>" for k in overall)
    row = "".join(f"<td>{bbox[k]:.1f}</td>" for k in overall)
    per_class = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{bbox.get(f'AP-{name}', float('nan')):.1f}</td></tr>"
        for name in class_names
    )
    return (
        f"<table><tr>{head}</tr><tr>{row}</tr></table>"
        f"<h3>Per class</h3><table><tr><th>class</th><th>AP</th></tr>{per_class}</table>"
    )


def write_report_html(
    path: Path, title: str, sections: Dict[str, str], stats: Dict, per_image: List[Dict]
) -> None:
    """``index.html``: ``sections`` (title -> HTML) first, then the wiring statistics, then one
    row per image (``{"name", "detections", "wiring"}``, picture paths relative to ``path``)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}",
        "img{max-width:100%;border:1px solid #ddd}td,th{padding:2px 10px;text-align:right}"
        ".row{display:flex;gap:12px;align-items:flex-start}.row "
        "img{max-height:420px}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, body in sections.items():
        parts += [f"<h2>{html.escape(heading)}</h2>", body]
    parts += [
        f"<h2>Wiring over {stats['num_images']} validation images</h2>",
        f"<p>{stats.get('distinct_patterns', 1)} distinct kept-edge patterns over all stages. "
        f"Colour map: {CMAP}, 0 (dropped) to 1; entry (i, j) is the weight of the edge from node i "
        "to node j. "
        "The chain is the edges i &rarr; i+1 (the static network's path).</p>",
        wiring_table_html(stats),
        "<h2>Validation images: ground truth (left), detections (right), the image's wiring</h2>",
    ]
    for item in per_image:
        parts += [
            f"<h3>{html.escape(item['name'])}</h3><div class='row'>",
            f"<img src='{html.escape(item['detections'])}'><img "
            f"src='{html.escape(item['wiring'])}'></div>",
        ]
    parts.append("</body></html>")
    path.write_text("\n".join(parts))
