"""Assembles the demo's ``index.html`` from a trained detector and its runs' logs."""

import json
from pathlib import Path

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model
from PIL import Image
from tqdm import tqdm

from ...engine import DDWCheckpointer
from ...utils.report import (
    ap_table_html,
    draw_detections,
    plot_curves,
    read_json_lines,
    write_report_html,
)
from ...utils.visualize import save_wiring
from ...utils.wiring_report import collect_over_records, dominant_class, summary_pictures
from ...utils.wiring_stats import dataset_statistics

__all__ = ["write_demo_report"]

SCORE_THRESHOLD = 0.5


def _image_pictures(run, index: int, metadata, output: Path) -> dict:
    """Ground truth beside detections, and the wiring, of image ``index`` of ``run``."""
    name = Path(run.records[index]["file_name"]).stem
    pair = draw_detections(
        run.images[index], run.records[index], run.predictions[index], metadata, SCORE_THRESHOLD
    )
    Image.fromarray(pair).save(output / "images" / f"{name}_detections.png")
    wiring = f"images/{name}_wiring.png"
    save_wiring(run.wirings, str(output / wiring), index, title=f"wiring of {name}")
    return {"name": name, "detections": f"images/{name}_detections.png", "wiring": wiring}


def write_demo_report(
    cfg, detect_dir: Path, pretrain_dir: Path, output: Path, per_image: int = 8
) -> Path:
    """Evaluate nothing again: read ``detect_dir/final_results.json`` and the logs, run the
    final model over the first test dataset for detections and wirings, write pictures and
    ``output/index.html``; return its path."""
    output.mkdir(parents=True, exist_ok=True)
    (output / "images").mkdir(exist_ok=True)
    dataset = cfg.DATASETS.TEST[0]
    metadata = MetadataCatalog.get(dataset)
    class_names = list(metadata.thing_classes)
    model = build_model(cfg)
    DDWCheckpointer(model).load(str(detect_dir / "model_final.pth"))
    model.eval()
    records = DatasetCatalog.get(dataset)
    run = collect_over_records(
        cfg,
        model,
        tqdm(records, desc="report: detections and wirings"),
        len(records),
        keep_predictions=True,
    )
    labels = [dominant_class(r) for r in run.records]
    labels = labels if all(label is not None for label in labels) else None
    stats = dataset_statistics(run.wirings, labels, class_names)
    (output / "wiring_statistics.json").write_text(json.dumps(stats))

    rows = [
        _image_pictures(run, index, metadata, output)
        for index in range(min(per_image, len(run.records)))
    ]
    plot_curves(
        read_json_lines(detect_dir / "metrics.json"),
        read_json_lines(pretrain_dir / "log.jsonl"),
        output / "curves.png",
    )
    pictures = summary_pictures(stats, run.wirings, labels, class_names, output)
    bbox = json.loads((detect_dir / "final_results.json").read_text())["bbox"]
    sections = {
        f"Box AP on {dataset} (pycocotools)": ap_table_html(bbox, class_names),
        "Training curves": "<img src='curves.png'>",
        **{title: f"<img src='{name}'>" for title, name in pictures.items()},
    }
    index_path = output / "index.html"
    write_report_html(index_path, "ddw_detectron demo", sections, stats, rows)
    return index_path
