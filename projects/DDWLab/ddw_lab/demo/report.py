"""Assembles the demo's ``index.html`` from a trained detector and its runs' logs."""

import html
import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model
from PIL import Image
from tqdm import tqdm

from ddw_detectron.engine import DDWCheckpointer
from ddw_detectron.utils.atomic import atomic_write_text
from ddw_detectron.utils.html_page import picture, provenance, section, write_html_page
from ddw_detectron.utils.visualize import save_wiring
from ddw_detectron.utils.wiring_report import save_figure, summary_pictures, wiring_summary_html
from ddw_detectron.utils.wiring_runs import collect_over_records, dominant_class
from ddw_detectron.utils.wiring_stats import dataset_statistics

__all__ = ["write_demo_report"]

SCORE_THRESHOLD = 0.5


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
    cfg, detect_dir: Path, pretrain_dir: Path, output: Path, per_image: int = 8, config: str = ""
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
    atomic_write_text(str(output / "wiring_statistics.json"), json.dumps(stats))

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
    blocks = [
        section(f"Box AP on {dataset} (pycocotools)", ap_table_html(bbox, class_names)),
        section("Training curves", picture("curves.png")),
        *(section(title, picture(name)) for title, name in pictures.items()),
        wiring_summary_html(stats, "validation images"),
        section(
            "Validation images: ground truth (left), detections (right), the image's wiring", ""
        ),
    ]
    for row in rows:
        pair = picture(row["detections"]) + picture(row["wiring"])
        blocks.append(section(row["name"], f"<div class='row'>{pair}</div>", level=3))
    index_path = output / "index.html"
    made_by = provenance(config, str(detect_dir / "model_final.pth"))
    write_html_page(index_path, "ddw_detectron demo", blocks, made_by)
    return index_path
