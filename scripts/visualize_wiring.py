#!/usr/bin/env python
"""Pictures and statistics of the wirings a DDW detector gives images.

    python scripts/visualize_wiring.py \
        --config-file configs/Demo/faster_rcnn_DDW_R_34_FPN_shapes.yaml \
        --dataset ddw_shapes_val --output output/wiring \
        --opts MODEL.WEIGHTS output/demo/detect/model_final.pth
    python scripts/visualize_wiring.py --config-file CFG --input photos/ img.jpg --output out \
        --opts MODEL.WEIGHTS ...
    python scripts/visualize_wiring.py --config-file CFG --skimage-photos --output out \
        --opts MODEL.WEIGHTS ...

Writes, into --output: per-image pictures (``images/*.png``: heatmap and DAG per stage), a grid
comparing images, the mean and spread of every edge, the per-class mean wiring (datasets with
annotations, by each image's dominant ground-truth class), a 2-D embedding of the images by
their wiring, ``statistics.json`` with every number, and ``index.html`` showing the pictures.
"""

import importlib.util
import sys
from pathlib import Path

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model

from ddw_detectron.checkpoint import DDWCheckpointer, consumer_facts
from ddw_detectron.config import load_config
from ddw_detectron.data.check import require_datasets
from ddw_detectron.data.own import DATASET_ARGUMENT_HELP, register_dataset_argument
from ddw_detectron.errors import exit_on_user_errors
from ddw_detectron.layers import DAGStage
from ddw_detectron.utils.html_page import provenance
from ddw_detectron.utils.image_tools import image_files, image_tool_parser, warn_if_untrained
from ddw_detectron.utils.wiring_report import write_wiring_report
from ddw_detectron.utils.wiring_runs import skimage_photos

if importlib.util.find_spec("ddw_lab"):  # the clone's lab: its generated datasets ddw_shapes_*
    import ddw_lab  # noqa: F401


def _records(args):
    """The images looked at (``--input``, then ``--dataset``'s) and the dataset's class names."""
    records = [{"file_name": str(f)} for f in image_files(args.input, recursive=True)]
    if not args.dataset:
        return records, None
    with exit_on_user_errors("visualize_wiring"):
        name = register_dataset_argument(args.dataset)
        require_datasets([name])
    records += DatasetCatalog.get(name)
    return records, MetadataCatalog.get(name).get("thing_classes")


def main(argv=None):
    parser = image_tool_parser(*__doc__.split("\n\n", 1))
    parser.add_argument(
        "--dataset", default="", help=DATASET_ARGUMENT_HELP + " (per-class statistics)"
    )
    parser.add_argument(
        "--skimage-photos", action="store_true", help="add scikit-image's bundled photographs"
    )
    parser.add_argument("--max-images", type=int, default=200, help="images looked at (200)")
    parser.add_argument(
        "--per-image", type=int, default=8, help="how many images get their own picture"
    )
    args = parser.parse_args(argv)
    if not args.input and not args.dataset and not args.skimage_photos:
        parser.error("give --input, --dataset and/or --skimage-photos")

    with exit_on_user_errors("visualize_wiring"):
        cfg = load_config(args.config_file, args.opts)
        warn_if_untrained("visualize_wiring", cfg)
        model = build_model(cfg)
        if not any(isinstance(m, DAGStage) for m in model.modules()):
            sys.exit(
                "visualize_wiring: error: the model has no DDW stages (MODEL.DDW.DYNAMIC_STAGES "
                f"is {list(cfg.MODEL.DDW.DYNAMIC_STAGES)}, backbone {cfg.MODEL.BACKBONE.NAME}); "
                "there is no wiring to show"
            )
        if cfg.MODEL.WEIGHTS:
            DDWCheckpointer(model, facts=consumer_facts(cfg)).load(cfg.MODEL.WEIGHTS)
    model.eval()

    records, class_names = _records(args)
    output = Path(args.output)
    (output / "images").mkdir(parents=True, exist_ok=True)
    if args.skimage_photos:
        records += skimage_photos(output / "skimage_photos")

    try:
        stats = write_wiring_report(
            cfg,
            model,
            records,
            output,
            class_names,
            args.max_images,
            args.per_image,
            made_by=provenance(args.config_file, cfg.MODEL.WEIGHTS),
        )
    except ValueError as exc:
        sys.exit(f"visualize_wiring: error: {exc}")
    for stage, entry in stats["stages"].items():
        print(
            f"{stage}: {entry['num_nodes']} nodes, mean edge weight "
            f"{entry['mean_edge_weight']:.3f}, kept {entry['kept']:.3f}, "
            f"diversity {entry['diversity']:.4f}"
        )
    print(f"{stats['num_images']} images; pictures and statistics in {output} (index.html)")


if __name__ == "__main__":
    main()
