"""The wiring a DDW detector gives a set of images: collected in one pass, summarised, drawn.

Shared by ``scripts/visualize_wiring.py``, ``scripts/freeze_wiring.py`` and the demo report.
"""

import html
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from detectron2.data import transforms as T
from detectron2.data.detection_utils import read_image

from ..layers import collect_wiring
from .visualize import CMAP, draw_adjacency

__all__ = [
    "IMAGE_SUFFIXES",
    "SKIMAGE_PHOTOS",
    "WiringRun",
    "collect_over_records",
    "dominant_class",
    "save_figure",
    "skimage_photos",
    "summary_pictures",
    "write_wiring_pictures",
    "write_wiring_report",
]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
SKIMAGE_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
)


def skimage_photos(folder: Path) -> List[Dict]:
    """Write the photographs bundled with scikit-image (no download) into ``folder``."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for name in SKIMAGE_PHOTOS:
        try:
            image = getattr(data, name)()
        except Exception as exc:  # a photo that scikit-image would have to download
            print(f"skipping scikit-image photo {name}: {type(exc).__name__}", file=sys.stderr)
            continue
        path = folder / f"{name}.png"
        Image.fromarray(image).convert("RGB").save(path)
        records.append({"file_name": str(path)})
    return records


def dominant_class(record: Dict) -> Optional[int]:
    """The category with the largest total box area in a Detectron2 dataset record."""
    annotations = record.get("annotations") or []
    if not annotations:
        return None
    areas = Counter()
    for a in annotations:
        x0, y0, x1, y1 = a["bbox"]
        w, h = (x1, y1) if a.get("bbox_mode", 1) == 1 else (x1 - x0, y1 - y0)
        areas[a["category_id"]] += w * h
    return areas.most_common(1)[0][0]


@dataclass
class WiringRun:
    """What :func:`collect_over_records` saw: per-stage wirings ``{stage: [N, n, n]}`` of the
    ``N`` readable images, their records, RGB pictures and (with ``keep_predictions``) the
    model's outputs."""

    wirings: Dict[str, torch.Tensor]
    records: List[Dict] = field(default_factory=list)
    images: List[np.ndarray] = field(default_factory=list)
    predictions: List[Dict] = field(default_factory=list)


@torch.no_grad()
def collect_over_records(
    cfg, model, records, max_images: int = 200, keep_predictions: bool = False
) -> WiringRun:
    """Run ``model`` (in eval mode) on each readable image of ``records`` with the test-time
    resize of ``cfg``, one image at a time; an unreadable file is skipped with a message
    naming it."""
    augment = T.ResizeShortestEdge(
        [cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST
    )
    wirings: Dict[str, List[torch.Tensor]] = {}
    run = WiringRun(wirings={})
    for record in records:
        if len(run.records) >= max_images:
            break
        try:
            image = read_image(record["file_name"], format=cfg.INPUT.FORMAT)
        except Exception as exc:  # PIL raises several kinds for files that are not images
            logger.warning(
                f"skipping {record['file_name']}: not a readable image ({type(exc).__name__}: "
                f"{exc})"
            )
            continue
        resized = augment.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
        outputs = model([{"image": tensor, "height": image.shape[0], "width": image.shape[1]}])
        for stage, adjacency in collect_wiring(model).items():
            wirings.setdefault(stage, []).append(adjacency[0].cpu())
        run.records.append(record)
        run.images.append(
            np.ascontiguousarray(image[:, :, ::-1] if cfg.INPUT.FORMAT == "BGR" else image)
        )
        if keep_predictions:
            run.predictions.append({k: v.to("cpu") for k, v in outputs[0].items()})
    run.wirings = {k: torch.stack(v) for k, v in wirings.items()}
    return run


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
    cfg, model, records, output: Path, class_names=None, max_images: int = 200, per_image: int = 8
) -> Dict:
    """Run ``model`` (eval mode) over ``records`` (at most ``max_images`` readable ones) and write
    into ``output``: ``per_image`` wiring pictures (``images/``), a grid of images side by side,
    the summary pictures, ``statistics.json`` and ``index.html``; returns the statistics.
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
        figure = wiring_figure(wirings, index, title=Path(kept[index]["file_name"]).name)
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
    (output / "statistics.json").write_text(json.dumps(stats))
    _write_index(output, pictures, pictures_of_images, stats)
    return stats


def _write_index(output: Path, pictures: Dict[str, str], per_image: List[str], stats) -> None:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>DDW wirings</title>",
        "<style>body{font-family:sans-serif;margin:2em}"
        "img{max-width:100%;border:1px solid #ddd}td,th{padding:2px 10px}</style></head><body>",
        f"<h1>DDW wirings of {stats['num_images']} images</h1>",
        f"<p>Colour map: {CMAP}, 0 (dropped) to 1. Entry (i, j): weight of the edge from node i to "
        "node j.</p>",
        wiring_table_html(stats),
    ]
    for title, name in pictures.items():
        parts += [f"<h2>{html.escape(title)}</h2>", f"<img src='{html.escape(name)}'>"]
    parts.append("<h2>Per image</h2>")
    for name in per_image:
        parts += [f"<h3>{html.escape(Path(name).stem)}</h3>", f"<img src='{html.escape(name)}'>"]
    parts.append("</body></html>")
    (output / "index.html").write_text("\n".join(parts))


def wiring_table_html(stats: Dict) -> str:
    """Per stage of :func:`~ddw_detectron.utils.wiring_stats.dataset_statistics`: nodes,
    edges kept, use of the DAG beyond the chain, patterns, diversity, class differences."""
    rows = []
    for stage, e in stats["stages"].items():
        rows.append(
            f"<tr><td>{html.escape(stage)}</td><td>{e['num_nodes']}</td><td>{e['kept']:.3f}</td>"
            f"<td>{e['non_chain_kept_share']:.3f}</td><td>{e['images_with_non_chain']:.3f}</td>"
            f"<td>{e['distinct_patterns']}</td><td>{e['diversity']:.4f}</td>"
            f"<td>{e.get('class_mean_difference', 0.0):.4f}</td></tr>"
        )
    header = (
        "<tr><th>stage</th><th>nodes</th><th>share of edges kept</th><th>kept edges off the "
        "chain</th>"
        "<th>images keeping an edge off the chain</th><th>distinct kept-edge patterns</th>"
        "<th>diversity</th><th>class-mean difference</th></tr>"
    )
    return f"<table>{header}{''.join(rows)}</table>"


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
        image = axes[1][column].imshow(
            np.asarray(entry["edge_std"]), cmap="magma", vmin=0.0, interpolation="nearest"
        )
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
    pictures = {"Mean and spread of every edge": _mean_and_spread(stats, stages, output)}
    if labels is not None and "class_mean" in stats["stages"][stages[0]]:
        pictures["Mean wiring per dominant class"] = _class_means(stats, stages, output)
    if "embedding" in stats and len(stats["embedding"][0]) == 2:
        pictures["Images embedded by their wiring (PCA)"] = _embedding(
            stats, labels, class_names, output
        )
    return pictures
