"""The ``frozen`` variant of a comparison (the trained DDW model with every stage fixed to its
mean wiring over the training set, evaluated without retraining), the trained DDW detector's
wiring over real photographs and the validation set, and the models' sizes."""

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from ..config import load_config
from ..layers import DAGStage
from ..pipeline import REPO
from .runs import DIGITS_CONFIG, RunSpec, box_metrics

__all__ = ["frozen_result", "model_costs", "node_flop_shares", "wiring_summary"]

# Per-stage wiring figures carried into the comparison (see utils.wiring_stats).
SUMMARY_KEYS = (
    "diversity",
    "kept",
    "non_chain_kept_share",
    "images_with_non_chain",
    "distinct_patterns",
    "class_mean_difference",
)


def frozen_result(comparison, spec: RunSpec) -> Dict:
    """Freeze the ``ddw`` run of ``spec.seed`` and evaluate it (results of the frozen run)."""
    ddw = RunSpec(spec.task, "ddw", spec.seed)
    folder = comparison.folder(spec)
    if spec.task == "digits":
        weights = comparison.folder(ddw) / "last.pth"
        cfg = _classifier_cfg(comparison.digits_args(ddw), weights, folder)
        return {"digits": {"top1": frozen_classifier_top1(cfg)}}
    pipeline = comparison.pipeline(ddw)
    pretrain = _classifier_cfg(
        pipeline.pretrain_args(), pipeline.pretrain_dir / "last.pth", folder / "pretrain"
    )
    cfg = pipeline.detection_cfg()
    cfg.defrost()
    cfg.MODEL.WEIGHTS = str(pipeline.detect_dir / "model_final.pth")
    cfg.OUTPUT_DIR = str(folder)
    cfg.freeze()
    return {**_frozen_detector(cfg, folder), "shapes": {"top1": frozen_classifier_top1(pretrain)}}


def _classifier_cfg(command: Sequence[str], weights: Path, output: Path):
    """The config of a pretraining command line (``--config-file PATH KEY VALUE ...``), loading
    ``weights`` and writing into ``output``."""
    from ..classification import add_classification_config

    args = list(command)
    start = args.index("--config-file")
    config, opts = args[start + 1], [a for a in args[start + 2 :] if a != "--resume"]
    opts += ["MODEL.WEIGHTS", str(weights), "OUTPUT_DIR", str(output)]
    return load_config(config, opts, extra=[add_classification_config])


def frozen_classifier_top1(cfg) -> float:
    """Top-1 (%) on the val set of the classifier of ``cfg`` (``MODEL.WEIGHTS``) with every
    stage frozen to its mean wiring over the train set (evaluation transforms)."""
    from torch.utils.data import DataLoader

    from ..classification import Pretrainer
    from ..classification.data import ImageFolderDataset, build_transforms, collate_skipping
    from ..utils.freezing import freeze_over_batches

    trainer = Pretrainer(cfg)
    try:
        train = ImageFolderDataset(
            os.path.join(cfg.CLS.DATA_ROOT, "train"),
            build_transforms(cfg, False),
            classes=trainer.train_set.classes,
        )
        loader = DataLoader(train, batch_size=cfg.CLS.BATCH_SIZE, collate_fn=collate_skipping)
        freeze_over_batches(trainer.model, (images for images, _, _ in loader if len(images)))
        return trainer.evaluate(trainer.model)["top1"]
    finally:
        if trainer.writer is not None:
            trainer.writer.close()


def _frozen_detector(cfg, folder: Path) -> Dict:
    from ..engine import DDWCheckpointer, DDWTrainer
    from ..utils.freezing import freeze_over_dataset

    model = DDWTrainer.build_model(cfg)
    DDWCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    wiring = detector_wiring(cfg, model, folder)
    freeze_over_dataset(cfg, model, cfg.DATASETS.TRAIN[0], "mean")
    return {"detection": box_metrics(DDWTrainer.test(cfg, model)), "wiring": wiring}


def detector_wiring(cfg, model, folder: Path) -> Dict:
    """:func:`wiring_summary` of a trained DDW detector over scikit-image's bundled photographs
    and over ``cfg.DATASETS.TEST[0]`` (with per-class figures by each image's dominant class)."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from ..utils.wiring_report import skimage_photos

    dataset = cfg.DATASETS.TEST[0]
    shares = node_flop_shares(model.backbone.bottom_up, cfg.INPUT.MIN_SIZE_TEST)
    classes = MetadataCatalog.get(dataset).get("thing_classes")
    return {
        "scikit-image photos": wiring_summary(
            cfg, model, skimage_photos(folder / "photos"), shares
        ),
        dataset: wiring_summary(cfg, model, DatasetCatalog.get(dataset), shares, classes),
    }


def wiring_summary(cfg, model, records, flop_shares, class_names=None) -> Dict:
    """Wiring of ``model`` over ``records``: distinct kept-edge patterns over all stages and,
    per stage, the :data:`SUMMARY_KEYS` figures, the dead nodes (outgoing edges dropped for
    every image) and the share of the bottom-up backbone's FLOPs they cost."""
    from ..utils.wiring_report import collect_over_records, dominant_class
    from ..utils.wiring_stats import dataset_statistics, dead_nodes

    model.eval()
    run = collect_over_records(cfg, model, records, len(records))
    labels = [dominant_class(r) for r in run.records] if class_names else None
    if labels is not None and None in labels:
        labels = None
    stats = dataset_statistics(run.wirings, labels, class_names)
    stages = {}
    for name, entry in stats["stages"].items():
        dead = dead_nodes(run.wirings[name])
        stages[name] = {key: entry[key] for key in SUMMARY_KEYS if key in entry}
        stages[name].update(
            dead_nodes=dead, dead_flops_share=sum(flop_shares[name][i] for i in dead)
        )
    return {
        "images": stats["num_images"],
        "distinct_patterns": stats.get("distinct_patterns", 1),
        "stages": stages,
    }


def node_flop_shares(backbone, size: int) -> Dict[str, List[float]]:
    """``{stage: [share of node i]}``: each DAG node's share of the FLOPs (fvcore) of
    ``backbone`` on one ``size`` x ``size`` image."""
    from fvcore.nn import FlopCountAnalysis

    was_training = backbone.training
    backbone.eval()
    image = torch.zeros(1, 3, size, size, device=next(backbone.parameters()).device)
    analysis = FlopCountAnalysis(backbone, image)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    by_module, total = analysis.by_module(), analysis.total()
    backbone.train(was_training)
    shares = {}
    for path, stage in backbone.named_modules():
        if isinstance(stage, DAGStage):
            names = {id(module): name for name, module in stage.named_children()}
            shares[stage.wiring_name] = [
                by_module[f"{path}.{names[id(node)]}"] / total for node in stage.nodes()
            ]
    return shares


def model_costs(comparison, seed: Optional[int] = None) -> Dict[str, Dict[str, Dict]]:
    """``{benchmark: {variant: {"params", "flops"}}}`` of the static and DDW models: parameters
    of the whole model; FLOPs (fvcore plus the aggregations, every edge counted) of one image at
    test size through the detector's backbone + FPN or through the classifier. The frozen model
    is the DDW model (its routers still run)."""
    from .runs import STATIC

    seed = comparison.seeds[0] if seed is None else seed
    costs: Dict[str, Dict[str, Dict]] = {}
    for variant in ("static", "ddw"):
        static = STATIC if variant == "static" else []
        if "digits" in comparison.tasks:
            opts = [*static, *comparison.digits_opts]
            cfg = _classifier_cfg(["--config-file", str(REPO / DIGITS_CONFIG), *opts], "", "")
            costs.setdefault("digits", {})[variant] = _classifier_costs(cfg)
        if "detection" in comparison.tasks:
            pipeline = comparison.pipeline(RunSpec("detection", variant, seed))
            costs.setdefault("shapes", {})[variant] = _classifier_costs(pipeline.pretrain_cfg())
            costs.setdefault("detection", {})[variant] = _detector_costs(pipeline.detection_cfg())
    for benchmark in costs.values():
        benchmark["frozen"] = benchmark["ddw"]
    return costs


def _classifier_costs(cfg) -> Dict:
    from ..classification import build_classifier
    from ..utils.flops import count_flops

    model = build_classifier(cfg)
    size = cfg.CLS.INPUT_SIZE
    flops = count_flops(model, torch.zeros(1, 3, size, size))["total"]
    return {"params": sum(p.numel() for p in model.parameters()), "flops": flops}


def _detector_costs(cfg) -> Dict:
    from ..engine import DDWTrainer
    from ..utils.flops import count_flops

    model = DDWTrainer.build_model(cfg)
    size = cfg.INPUT.MIN_SIZE_TEST
    flops = count_flops(model.backbone, torch.zeros(1, 3, size, size))["total"]
    return {"params": sum(p.numel() for p in model.parameters()), "flops": flops}
