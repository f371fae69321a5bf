#!/usr/bin/env python
"""Pictures and statistics of the wirings a DDW detector gives images.

    python scripts/visualize_wiring.py \
        --config-file configs/Demo/faster_rcnn_DDW_R_18_FPN_shapes.yaml \
        --dataset ddw_shapes_val --output output/wiring MODEL.WEIGHTS output/demo/model_final.pth
    python scripts/visualize_wiring.py --config-file CFG --input photos/ img.jpg --output out \
        MODEL.WEIGHTS ...
    python scripts/visualize_wiring.py --config-file CFG --skimage-photos --output out \
        MODEL.WEIGHTS ...

Writes, into --output: per-image pictures (``images/*.png``: heatmap and DAG per stage), a grid
comparing images, the mean and spread of every edge, the per-class mean wiring (datasets with
annotations, by each image's dominant ground-truth class), a 2-D embedding of the images by
their wiring, ``statistics.json`` with every number, and ``index.html`` showing the pictures.
"""

import argparse
import html
import json
import sys
from pathlib import Path

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model

from ddw_detectron.config import load_config
from ddw_detectron.engine import DDWCheckpointer
from ddw_detectron.layers import DAGStage
from ddw_detectron.utils.visualize import CMAP, wiring_figure, wiring_grid
from ddw_detectron.utils.wiring_report import (
    collect_over_records,
    dominant_class,
    list_inputs,
    save_figure,
    skimage_photos,
    summary_pictures,
)
from ddw_detectron.utils.wiring_stats import dataset_statistics


def write_index(output, pictures, per_image, stats):
    rows = []
    for stage, entry in stats["stages"].items():
        rows.append(
            f"<tr><td>{html.escape(stage)}</td><td>{entry['num_nodes']}</td><td>{entry['mean_edge_weight']:.3f}</td>"
            f"<td>{entry['kept']:.3f}</td><td>{entry['diversity']:.4f}</td></tr>"
        )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>DDW wirings</title>",
        "<style>body{font-family:sans-serif;margin:2em}"
        "img{max-width:100%;border:1px solid #ddd}td,th{padding:2px 10px}</style></head><body>",
        f"<h1>DDW wirings of {stats['num_images']} images</h1>",
        f"<p>Colour map: {CMAP}, 0 (dropped) to 1. Entry (i, j): weight of the edge from node i to "
        "node j.</p>",
        "<table><tr><th>stage</th><th>nodes</th><th>mean edge weight</th><th>share "
        "kept</th><th>diversity</th></tr>",
        *rows,
        "</table>",
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
    parser.add_argument(
        "--dataset", default="", help="a registered dataset (per-class statistics need annotations)"
    )
    parser.add_argument(
        "--skimage-photos",
        action="store_true",
        help="add the photographs bundled with scikit-image",
    )
    parser.add_argument("--output", required=True)
    parser.add_argument("--max-images", type=int, default=200)
    parser.add_argument(
        "--per-image", type=int, default=8, help="how many images get their own picture"
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="config overrides, e.g. MODEL.WEIGHTS path"
    )
    args = parser.parse_args(argv)
    if not args.input and not args.dataset and not args.skimage_photos:
        parser.error("give --input, --dataset and/or --skimage-photos")

    cfg = load_config(args.config_file, args.opts)
    model = build_model(cfg)
    if not any(isinstance(m, DAGStage) for m in model.modules()):
        sys.exit(
            "visualize_wiring: error: the model has no DDW stages (MODEL.DDW.DYNAMIC_STAGES is "
            f"{list(cfg.MODEL.DDW.DYNAMIC_STAGES)}, backbone {cfg.MODEL.BACKBONE.NAME}); there is "
            "no wiring to show"
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

    run = collect_over_records(cfg, model, records, args.max_images)
    wirings, kept, thumbnails = run.wirings, run.records, run.images
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
        save_figure(
            wiring_figure(wirings, index, title=Path(kept[index]["file_name"]).name), output / name
        )
        per_image.append(name)
    shown = list(range(min(6, len(kept))))
    grid_labels = [
        class_names[labels[i]]
        if labels is not None and class_names
        else Path(kept[i]["file_name"]).name
        for i in shown
    ]
    save_figure(
        wiring_grid(wirings, shown, [thumbnails[i] for i in shown], grid_labels),
        output / "grid.png",
    )
    pictures = {
        "Images side by side": "grid.png",
        **summary_pictures(stats, wirings, labels, class_names, output),
    }
    (output / "statistics.json").write_text(json.dumps(stats))
    write_index(output, pictures, per_image, stats)
    for stage, entry in stats["stages"].items():
        print(
            f"{stage}: {entry['num_nodes']} nodes, mean edge weight "
            f"{entry['mean_edge_weight']:.3f}, kept {entry['kept']:.3f}, "
            f"diversity {entry['diversity']:.4f}"
        )
    print(f"{len(kept)} images; pictures and statistics in {output} (index.html)")


if __name__ == "__main__":
    main()
