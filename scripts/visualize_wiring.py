#!/usr/bin/env python
"""Pictures and statistics of the wirings a DDW detector gives images.

    python scripts/visualize_wiring.py --config-file configs/Demo/faster_rcnn_DDW_R_18_FPN_shapes.yaml \
        --dataset ddw_shapes_val --output output/wiring MODEL.WEIGHTS output/demo/model_final.pth
    python scripts/visualize_wiring.py --config-file CFG --input photos/ img.jpg --output out MODEL.WEIGHTS ...
    python scripts/visualize_wiring.py --config-file CFG --skimage-photos --output out MODEL.WEIGHTS ...

Writes, into --output: per-image pictures (``images/*.png``: heatmap and DAG per stage), a grid
comparing images, the mean and spread of every edge, the per-class mean wiring (datasets with
annotations, by each image's dominant ground-truth class), a 2-D embedding of the images by
their wiring, ``statistics.json`` with every number, and ``index.html`` showing the pictures.
"""

import argparse
import html
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import transforms as T
from detectron2.data.detection_utils import read_image
from detectron2.modeling import build_model

import ddw_detectron
from ddw_detectron.config import load_config
from ddw_detectron.engine import DDWCheckpointer
from ddw_detectron.layers import DAGStage
from ddw_detectron.utils.visualize import CMAP, draw_adjacency, wiring_figure, wiring_grid
from ddw_detectron.utils.wiring_stats import dataset_statistics

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def list_inputs(paths):
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            files.append(path)
    return [{"file_name": str(f)} for f in files]


SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "hubble_deep_field", "immunohistochemistry")


def skimage_photos(folder: Path):
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


def dominant_class(record):
    annotations = record.get("annotations") or []
    if not annotations:
        return None
    areas = Counter()
    for a in annotations:
        x, y, w, h = a["bbox"] if a.get("bbox_mode", 1) == 1 else (a["bbox"][0], a["bbox"][1], a["bbox"][2] - a["bbox"][0], a["bbox"][3] - a["bbox"][1])
        areas[a["category_id"]] += w * h
    return areas.most_common(1)[0][0]


def collect(cfg, model, records, max_images):
    """Run the model on each readable image; return per-stage wirings, kept records, images."""
    augment = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST)
    wirings, kept, thumbnails = {}, [], []
    for record in records:
        if len(kept) >= max_images:
            break
        path = record["file_name"]
        try:
            image = read_image(path, format=cfg.INPUT.FORMAT)
        except Exception as exc:  # PIL raises several kinds for files that are not images
            print(f"skipping {path}: not a readable image ({type(exc).__name__}: {exc})", file=sys.stderr)
            continue
        resized = augment.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
        with torch.no_grad():
            model([{"image": tensor, "height": image.shape[0], "width": image.shape[1]}])
        for stage, adjacency in ddw_detectron.collect_wiring(model).items():
            wirings.setdefault(stage, []).append(adjacency[0].cpu())
        kept.append(record)
        rgb = image[:, :, ::-1] if cfg.INPUT.FORMAT == "BGR" else image
        thumbnails.append(np.ascontiguousarray(rgb))
    return {k: torch.stack(v) for k, v in wirings.items()}, kept, thumbnails


def save(fig, path):
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary_pictures(stats, wirings, labels, class_names, output):
    import matplotlib.pyplot as plt

    pictures = {}
    stages = list(wirings)
    fig, axes = plt.subplots(2, len(stages), figsize=(2.7 * len(stages), 5.4), squeeze=False)
    for column, stage in enumerate(stages):
        entry = stats["stages"][stage]
        draw_adjacency(axes[0][column], entry["edge_mean"], f"{stage}: mean")
        image = axes[1][column].imshow(np.asarray(entry["edge_std"]), cmap="magma", vmin=0.0, interpolation="nearest")
        axes[1][column].set_title(f"{stage}: spread (std)", fontsize=8)
        axes[1][column].tick_params(labelsize=6)
        fig.colorbar(image, ax=axes[1][column], fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
    fig.tight_layout()
    save(fig, output / "edge_mean_and_spread.png")
    pictures["Mean and spread of every edge"] = "edge_mean_and_spread.png"

    if labels is not None and "class_mean" in stats["stages"][stages[0]]:
        classes = list(stats["stages"][stages[0]]["class_mean"])
        fig, axes = plt.subplots(len(classes), len(stages), figsize=(2.4 * len(stages), 2.4 * len(classes)), squeeze=False)
        for row, name in enumerate(classes):
            for column, stage in enumerate(stages):
                draw_adjacency(axes[row][column], stats["stages"][stage]["class_mean"][name], f"{stage} | {name}")
        fig.tight_layout()
        save(fig, output / "class_mean_wiring.png")
        pictures["Mean wiring per dominant class"] = "class_mean_wiring.png"

    if "embedding" in stats and len(stats["embedding"][0]) == 2:
        points = np.asarray(stats["embedding"])
        fig, ax = plt.subplots(figsize=(4.6, 4.0))
        if labels is not None:
            for label in sorted(set(labels)):
                mask = np.asarray(labels) == label
                ax.scatter(points[mask, 0], points[mask, 1], s=14, label=class_names[label] if class_names else str(label))
            ax.legend(fontsize=7)
        else:
            ax.scatter(points[:, 0], points[:, 1], s=14)
        ax.set_xlabel("wiring PC 1", fontsize=8)
        ax.set_ylabel("wiring PC 2", fontsize=8)
        ax.set_title("images embedded by their wiring", fontsize=9)
        fig.tight_layout()
        save(fig, output / "embedding.png")
        pictures["Images embedded by their wiring (PCA)"] = "embedding.png"
    return pictures


def write_index(output, pictures, per_image, stats):
    rows = []
    for stage, entry in stats["stages"].items():
        rows.append(
            f"<tr><td>{html.escape(stage)}</td><td>{entry['num_nodes']}</td><td>{entry['mean_edge_weight']:.3f}</td>"
            f"<td>{entry['kept']:.3f}</td><td>{entry['diversity']:.4f}</td></tr>"
        )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>DDW wirings</title>",
        "<style>body{font-family:sans-serif;margin:2em}img{max-width:100%;border:1px solid #ddd}td,th{padding:2px 10px}</style></head><body>",
        f"<h1>DDW wirings of {stats['num_images']} images</h1>",
        f"<p>Colour map: {CMAP}, 0 (dropped) to 1. Entry (i, j): weight of the edge from node i to node j.</p>",
        "<table><tr><th>stage</th><th>nodes</th><th>mean edge weight</th><th>share kept</th><th>diversity</th></tr>",
        *rows, "</table>",
    ]
    for title, name in pictures.items():
        parts += [f"<h2>{html.escape(title)}</h2>", f"<img src='{html.escape(name)}'>"]
    parts.append("<h2>Per image</h2>")
    for name in per_image:
        parts += [f"<h3>{html.escape(Path(name).stem)}</h3>", f"<img src='{html.escape(name)}'>"]
    parts.append("</body></html>")
    (output / "index.html").write_text("\n".join(parts))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--input", nargs="*", default=[], help="image files or folders")
    parser.add_argument("--dataset", default="", help="a registered dataset (per-class statistics need annotations)")
    parser.add_argument("--skimage-photos", action="store_true", help="add the photographs bundled with scikit-image")
    parser.add_argument("--output", required=True)
    parser.add_argument("--max-images", type=int, default=200)
    parser.add_argument("--per-image", type=int, default=8, help="how many images get their own picture")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, e.g. MODEL.WEIGHTS path")
    args = parser.parse_args(argv)
    if not args.input and not args.dataset and not args.skimage_photos:
        parser.error("give --input, --dataset and/or --skimage-photos")

    cfg = load_config(args.config_file, args.opts)
    model = build_model(cfg)
    if not any(isinstance(m, DAGStage) for m in model.modules()):
        sys.exit(
            "visualize_wiring: error: the model has no DDW stages (MODEL.DDW.DYNAMIC_STAGES is "
            f"{list(cfg.MODEL.DDW.DYNAMIC_STAGES)}, backbone {cfg.MODEL.BACKBONE.NAME}); there is no wiring to show"
        )
    if cfg.MODEL.WEIGHTS:
        DDWCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    model.eval()

    records = list_inputs(args.input)
    class_names = None
    if args.dataset:
        records += DatasetCatalog.get(args.dataset)
        class_names = MetadataCatalog.get(args.dataset).get("thing_classes")
    output = Path(args.output)
    (output / "images").mkdir(parents=True, exist_ok=True)
    if args.skimage_photos:
        records += skimage_photos(output / "skimage_photos")

    wirings, kept, thumbnails = collect(cfg, model, records, args.max_images)
    if not kept:
        sys.exit("visualize_wiring: error: no readable image among the inputs")
    labels = [dominant_class(r) for r in kept]
    labels = labels if all(label is not None for label in labels) else None
    stats = dataset_statistics(wirings, labels, class_names)
    stats["images"] = [r["file_name"] for r in kept]
    if labels is not None:
        stats["labels"] = labels

    per_image = []
    for index in range(min(args.per_image, len(kept))):
        name = f"images/{index:04d}_{Path(kept[index]['file_name']).stem}.png"
        save(wiring_figure(wirings, index, title=Path(kept[index]["file_name"]).name), output / name)
        per_image.append(name)
    shown = list(range(min(6, len(kept))))
    grid_labels = [class_names[labels[i]] if labels is not None and class_names else Path(kept[i]["file_name"]).name for i in shown]
    save(wiring_grid(wirings, shown, [thumbnails[i] for i in shown], grid_labels), output / "grid.png")
    pictures = {"Images side by side": "grid.png", **summary_pictures(stats, wirings, labels, class_names, output)}
    (output / "statistics.json").write_text(json.dumps(stats))
    write_index(output, pictures, per_image, stats)
    for stage, entry in stats["stages"].items():
        print(f"{stage}: {entry['num_nodes']} nodes, mean edge weight {entry['mean_edge_weight']:.3f}, kept {entry['kept']:.3f}, diversity {entry['diversity']:.4f}")
    print(f"{len(kept)} images; pictures and statistics in {output} (index.html)")


if __name__ == "__main__":
    main()
