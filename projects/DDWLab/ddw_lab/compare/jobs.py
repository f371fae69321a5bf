"""The comparison's evaluation jobs (its training jobs are :mod:`ddw_lab.jobs`),
each run in a fresh process and each ending by writing the ``result.json`` of the arms derived
from a trained DDW model: frozen to its mean wiring, and each image given another image's."""

import os
from typing import Dict, List, Sequence

import numpy as np
import torch

from ddw_detectron.checkpoint import load_torch_file
from ddw_lab.jobs import box_metrics, classification_cfg, detection_cfg, write_result

__all__ = ["derangement", "evaluate_classifier_arms", "evaluate_detector_arms"]


def derangement(count: int, seed: int) -> np.ndarray:
    """A permutation of ``range(count)`` with no fixed point: each index goes to the next one in
    a random order (``count >= 2``)."""
    if count < 2:
        raise ValueError(f"a derangement needs at least 2 elements, got {count}")
    order = np.random.default_rng(seed).permutation(count)
    result = np.empty(count, dtype=np.int64)
    result[order] = np.roll(order, -1)
    return result


# --- classification -------------------------------------------------------------------------
@torch.no_grad()
def _classify(model, loader, wiring_of=None):
    """Logits, targets and each image's wiring over ``loader``; ``wiring_of(indices)`` gives
    the ``{stage: [B, n, n]}`` to impose on a batch of images of those indices."""
    from ddw_detectron.layers import collect_wiring, use_wiring

    logits, targets, wirings, start = [], [], {}, 0
    for images, labels, excluded in loader:
        if excluded:
            raise RuntimeError("an unreadable validation image: the comparison needs them all")
        indices = torch.arange(start, start + len(labels))
        start += len(labels)
        if wiring_of is None:
            out = model(images)
        else:
            with use_wiring(model, wiring_of(indices)):
                out = model(images)
        logits.append(out.double())
        targets.append(labels)
        for stage, adjacency in collect_wiring(model).items():
            wirings.setdefault(stage, []).append(adjacency)
    return torch.cat(logits), torch.cat(targets), {k: torch.cat(v) for k, v in wirings.items()}


def _classification_figures(logits, targets, reference=None) -> Dict[str, float]:
    from ddw_detectron.classification.evaluation import classification_counts

    top1, _, loss, n = classification_counts(logits, targets)
    figures = {"top1": 100.0 * top1 / n, "val_loss": loss / n}
    if reference is not None:
        changed = (logits.argmax(1) != reference.argmax(1)).double().mean()
        figures["changed_predictions"] = 100.0 * float(changed)
    return figures


def evaluate_classifier_arms(
    config: str, opts: Sequence[str], results: Dict[str, str], seed: int
) -> None:
    """Evaluate the trained DDW classifier of ``config`` + ``opts`` (``OUTPUT_DIR/last.pth``)
    with each validation image given another's wiring (``results["shuffled"]``) and frozen to
    its mean wiring over the training images (``results["frozen"]``)."""
    from torch.utils.data import DataLoader

    from ddw_detectron.classification.data import (
        ImageFolderDataset,
        build_transforms,
        collate_readable,
    )
    from ddw_detectron.modeling.classifier import build_classifier
    from ddw_detectron.utils.freezing import freeze_over_batches

    cfg = classification_cfg(config, opts)
    model = build_classifier(cfg)
    state = load_torch_file(os.path.join(cfg.OUTPUT_DIR, "last.pth"))
    model.load_state_dict(state["model"])
    model.eval()
    transform = build_transforms(cfg, False)
    folders = {s: os.path.join(cfg.CLS.DATA_ROOT, s) for s in ("train", "val")}
    train_set = ImageFolderDataset(folders["train"], transform)
    val_set = ImageFolderDataset(folders["val"], transform, classes=train_set.classes)

    def loader(dataset):
        return DataLoader(dataset, batch_size=cfg.CLS.BATCH_SIZE, collate_fn=collate_readable)

    own, targets, wirings = _classify(model, loader(val_set))
    other = torch.from_numpy(derangement(len(targets), seed))
    swapped, _, _ = _classify(
        model, loader(val_set), lambda idx: {s: w[other[idx]] for s, w in wirings.items()}
    )
    write_result(results["shuffled"], _classification_figures(swapped, targets, own))
    freeze_over_batches(model, (images for images, _, _ in loader(train_set) if len(images)))
    frozen, _, _ = _classify(model, loader(val_set))
    write_result(results["frozen"], _classification_figures(frozen, targets, own))


# --- detection ------------------------------------------------------------------------------
class _Wirings(torch.nn.Module):
    """A detector whose forward (test loader batches) records each image's wiring by image id,
    or, given ``other`` (image id -> image id), imposes that other image's recorded wiring."""

    def __init__(self, model, recorded=None, other=None):
        super().__init__()
        self.model = model
        self.recorded = {} if recorded is None else recorded
        self.other = other

    def forward(self, inputs):
        from ddw_detectron.layers import collect_wiring, use_wiring

        if self.other is None:
            outputs = self.model(inputs)
            for record, wiring in zip(inputs, _split(collect_wiring(self.model), len(inputs))):
                self.recorded[record["image_id"]] = wiring
            return outputs
        outputs = []
        for record in inputs:
            source = self.recorded[self.other[record["image_id"]]]
            with use_wiring(self.model, {s: w[None] for s, w in source.items()}):
                outputs.extend(self.model([record]))
        return outputs


def _split(wiring: Dict[str, torch.Tensor], count: int) -> List[Dict[str, torch.Tensor]]:
    return [{stage: w[b].clone() for stage, w in wiring.items()} for b in range(count)]


def evaluate_detector_arms(
    config: str, opts: Sequence[str], results: Dict[str, str], seed: int
) -> None:
    """Evaluate the trained DDW detector of ``config`` + ``opts`` (``OUTPUT_DIR/
    model_final.pth``) on ``DATASETS.TEST`` with each image given another test image's wiring
    (``results["shuffled"]``) and frozen to its mean wiring over ``DATASETS.TRAIN``
    (``results["frozen"]``)."""
    from detectron2.utils.logger import setup_logger

    from ddw_detectron.engine import DDWCheckpointer, DDWTrainer
    from ddw_detectron.utils.freezing import freeze_over_dataset

    cfg = detection_cfg(config, opts)
    setup_logger(name="detectron2")
    model = DDWTrainer.build_model(cfg)
    DDWCheckpointer(model).load(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))
    recorder = _Wirings(model)
    DDWTrainer.test(cfg, recorder)
    ids = sorted(recorder.recorded)
    other = {ids[i]: ids[j] for i, j in enumerate(derangement(len(ids), seed))}
    shuffled = DDWTrainer.test(cfg, _Wirings(model, recorder.recorded, other))
    write_result(results["shuffled"], box_metrics(shuffled))
    freeze_over_dataset(cfg, model, cfg.DATASETS.TRAIN[0], "mean")
    write_result(results["frozen"], box_metrics(DDWTrainer.test(cfg, model)))
