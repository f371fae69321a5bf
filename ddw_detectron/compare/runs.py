"""Does dynamic wiring help? DDW against its static twin and its frozen wiring, over seeds
(``scripts/compare.py``, ``make compare``).

For each task and seed, three models with one recipe, budget, data order and seed:

- ``static``: ``MODEL.DDW.DYNAMIC_STAGES []``, the base network;
- ``ddw``: the dynamic backbone;
- ``frozen``: the trained ``ddw`` model with every stage fixed to its mean wiring over the
  training set (:mod:`ddw_detectron.utils.freezing`), evaluated without retraining.

Tasks: ``detection`` runs the demo pipeline (:class:`~ddw_detectron.pipeline.DemoPipeline`:
pretraining on the shapes classification set, hand-off, Faster R-CNN FPN on ``ddw_shapes``),
which gives two benchmarks, box AP on ``ddw_shapes_val`` and the pretraining's top-1 on the
shapes classification set; ``digits`` runs the classification trainer on scikit-learn's digits.

Every finished run leaves ``<output>/<task>/<variant>/seed<k>/result.json`` and is reused by a
later call; an interrupted one resumes from its last checkpoint (the scripts' ``--resume``).
"""

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence

from ..pipeline import REPO, DemoPipeline, run_script

__all__ = ["TASKS", "VARIANTS", "Comparison", "ComparisonConflict", "RunSpec"]

TASKS = ("digits", "detection")
VARIANTS = ("static", "ddw", "frozen")
DIGITS_CONFIG = "configs/Digits/pretrain_DDW_R_18_digits.yaml"
STATIC = ["MODEL.DDW.DYNAMIC_STAGES", "[]"]
RESULT = "result.json"
MANIFEST = "compare_run.json"


class ComparisonConflict(RuntimeError):
    """The output folder holds a comparison of other settings."""


@dataclass(frozen=True)
class RunSpec:
    task: str
    variant: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.task}/{self.variant}/seed{self.seed}"


@dataclass
class Comparison:
    """The runs of a comparison over ``output``. ``*_opts`` are ``KEY VALUE`` overrides of the
    demo's pretraining and detection configs and of the digits config, applied to every
    variant (e.g. a shorter schedule)."""

    output: Path
    seeds: Sequence[int] = (0, 1, 2)
    tasks: Sequence[str] = TASKS
    pretrain_opts: List[str] = field(default_factory=list)
    detection_opts: List[str] = field(default_factory=list)
    digits_opts: List[str] = field(default_factory=list)
    python: str = sys.executable

    def __post_init__(self):
        self.output = Path(self.output)
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"unknown tasks {unknown}; the tasks are {list(TASKS)}")
        if len(set(self.seeds)) < 2:
            raise ValueError(f"a comparison needs at least 2 distinct seeds, got {self.seeds}")

    def plan(self) -> List[RunSpec]:
        """Every run in the order it is made: task by task, seed by seed, the frozen model
        right after the DDW model it is made from."""
        return [
            RunSpec(task, variant, seed)
            for task in TASKS
            if task in self.tasks
            for seed in self.seeds
            for variant in VARIANTS
        ]

    def folder(self, spec: RunSpec) -> Path:
        return self.output / spec.task / spec.variant / f"seed{spec.seed}"

    def result(self, spec: RunSpec):
        path = self.folder(spec) / RESULT
        return json.loads(path.read_text()) if path.is_file() else None

    def claim_output(self) -> None:
        """Check that ``output`` holds no comparison of other overrides; write the manifest."""
        ours = {
            "pretrain_opts": list(self.pretrain_opts),
            "detection_opts": list(self.detection_opts),
            "digits_opts": list(self.digits_opts),
        }
        path = self.output / MANIFEST
        if path.is_file():
            theirs = json.loads(path.read_text())
            if theirs != ours:
                raise ComparisonConflict(
                    f"{self.output} holds a comparison made with the overrides {theirs}, not "
                    f"{ours}: give another --output or delete the folder"
                )
        self.output.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ours, indent=2))

    def run(self, progress=None) -> Dict[str, Dict]:
        """Make every run that has no result yet; returns ``{run name: result}``."""
        self.claim_output()
        results = {}
        plan = self.plan()
        for number, spec in enumerate(plan, 1):
            result = self.result(spec)
            status = "reusing" if result is not None else "running"
            print(f"\n==== [{number}/{len(plan)}] {spec.name}: {status}", flush=True)
            if result is None:
                result = self._make(spec)
            results[spec.name] = result
            if progress is not None:
                progress(number, len(plan), spec)
        return results

    def _make(self, spec: RunSpec) -> Dict:
        folder = self.folder(spec)
        folder.mkdir(parents=True, exist_ok=True)
        if spec.variant == "frozen":
            from .frozen import frozen_result

            result = frozen_result(self, spec)
        elif spec.task == "detection":
            result = self._detection(spec)
        else:
            result = self._digits(spec)
        partial = folder / (RESULT + ".incomplete")
        partial.write_text(json.dumps(result, indent=2))
        os.replace(partial, folder / RESULT)
        return result

    # --- detection: the demo pipeline -------------------------------------------------------
    def pipeline(self, spec: RunSpec) -> DemoPipeline:
        variant = STATIC if spec.variant == "static" else []
        return DemoPipeline(
            self.folder(spec),
            pretrain_opts=["CLS.SEED", str(spec.seed), *variant, *self.pretrain_opts],
            detection_opts=["SEED", str(spec.seed), *variant, *self.detection_opts],
            python=self.python,
        )

    def _detection(self, spec: RunSpec) -> Dict:
        pipeline = self.pipeline(spec)
        final = pipeline.run(("data", "pretrain", "handoff", "detect"))
        return {
            "detection": box_metrics(final),
            "shapes": {"top1": _last_epoch(pipeline.pretrain_dir)["top1"]},
            "train_seconds": {
                "detection": detection_train_seconds(pipeline.detect_dir / "metrics.json"),
                "shapes": pretrain_seconds(pipeline.pretrain_dir),
            },
        }

    # --- digits: the classification trainer -------------------------------------------------
    def digits_args(self, spec: RunSpec) -> List[str]:
        """The arguments of ``scripts/pretrain_imagenet.py`` for a digits run."""
        from ..data.digits import digits_root

        return [
            "--config-file",
            str(REPO / DIGITS_CONFIG),
            "--resume",
            "CLS.DATA_ROOT",
            str(digits_root()),
            "CLS.SEED",
            str(spec.seed),
            *(STATIC if spec.variant == "static" else []),
            *self.digits_opts,
            "OUTPUT_DIR",
            str(self.folder(spec)),
        ]

    def _digits(self, spec: RunSpec) -> Dict:
        run_script("pretrain_imagenet.py", self.digits_args(spec), self.python)
        folder = self.folder(spec)
        return {
            "digits": {"top1": _last_epoch(folder)["top1"]},
            "train_seconds": {"digits": pretrain_seconds(folder)},
        }


def box_metrics(results: Dict) -> Dict[str, float]:
    """Box AP, AP50, AP75 and per-class AP (``AP-<class>``) of Detectron2's COCO evaluation."""
    bbox = results["bbox"]
    return {k: float(v) for k, v in bbox.items() if k in ("AP", "AP50", "AP75") or k[:3] == "AP-"}


def _log_lines(folder: Path) -> List[Dict]:
    return [json.loads(line) for line in (Path(folder) / "log.jsonl").read_text().splitlines()]


def _last_epoch(folder: Path) -> Dict:
    """The last epoch's figures of a pretraining run (its final model, not its best epoch)."""
    return _log_lines(folder)[-1]


def pretrain_seconds(folder: Path) -> float:
    """Wall time of a pretraining run's epochs (training and each epoch's evaluation), summed
    over its ``log.jsonl``, so that a resumed run counts each epoch once."""
    return float(sum(line["seconds"] for line in _log_lines(folder)))


def detection_train_seconds(metrics: Path) -> float:
    """Training time of a Detectron2 run from its ``metrics.json``: each logged iteration
    time (a median over the logging window) times the iterations since the previous line."""
    total, previous = 0.0, -1
    for line in Path(metrics).read_text().splitlines():
        entry = json.loads(line)
        if "time" in entry and "iteration" in entry:
            total += entry["time"] * (entry["iteration"] - previous)
            previous = entry["iteration"]
    return total
