"""Does the per-image wiring work? The runs of ``make compare`` (``scripts/compare.py``).

Two tasks, each over seeds, every arm with one recipe, budget, data order and seed:

- ``classification``: ``ddw_mixed`` (:mod:`ddw_lab.data.mixed`: 16 classes of digits and
  shapes, 5,000 validation images) with a narrow ResNet-50 trained from scratch by the
  classification trainer (``configs/Mixed/pretrain_DDW_R_50_narrow_mixed.yaml``);
- ``detection``: the demo's recipe (``configs/Demo/``: a ResNet-34 pretrained on the shapes crops,
  then Faster R-CNN FPN) evaluated on ``ddw_shapes_test`` (512 generated images).

The arms (:mod:`.arms`): the static chain, the learned static DAG and DDW retrained each, plus
DDW frozen to its mean wiring and DDW with each image given another image's wiring, derived
from the trained DDW model. Every finished job leaves ``<output>/<task>/<arm>/seed<k>/
result.json`` and is reused by a later call; an interrupted training resumes from its last
checkpoint.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ddw_detectron.model_zoo import get_config_file
from ddw_lab import jobs
from ddw_lab.compare.arms import ARMS, PRETRAINING, TASKS, arm
from ddw_lab.compare.jobs import evaluate_classifier_arms, evaluate_detector_arms
from ddw_lab.data.mixed import mixed_root
from ddw_lab.data.shapes import shapes_classification_root
from ddw_lab.manifest import claim_folder
from ddw_lab.process import banner, run_in_child

__all__ = ["CONFIGS", "Comparison", "Job"]

CONFIGS = {
    "classification": "Mixed/pretrain_DDW_R_50_narrow_mixed.yaml",
    "pretrain": "Demo/pretrain_DDW_R_34_shapes.yaml",
    "detection": "Demo/faster_rcnn_DDW_R_34_FPN_shapes.yaml",
}
RESULT = "result.json"
MANIFEST = "compare_run.json"
DETECTION_TEST = ["DATASETS.TEST", "('ddw_shapes_test',)"]


# Every run trains to its end, a collapsed one too: the comparison records what happened
# (report.is_collapse) where a user's run would stop.
TRAIN_THROUGH_COLLAPSE = ("MODEL.DDW.COLLAPSE_SHARE", "0.0")


@dataclass(frozen=True)
class Job:
    """One job: a trained arm, a detection arm's pretraining (``pretrain``), or the
    evaluation of the arms derived from a trained DDW model (``derived``)."""

    task: str
    kind: str  # "train", "pretrain" or "derived"
    arm: str
    seed: int

    @property
    def name(self) -> str:
        prefix = {"train": "", "pretrain": "pretrain-", "derived": "derived-from-"}[self.kind]
        return f"{self.task}/{prefix}{self.arm}/seed{self.seed}"


@dataclass
class Comparison:
    """The jobs of a comparison over ``output``. ``seeds[task]`` are each task's seeds;
    ``opts[key]`` (keys of :data:`CONFIGS`) are ``KEY VALUE`` overrides of that config applied
    to every arm (e.g. a shorter schedule); ``scale`` ``"tiny"`` uses the small ddw_mixed."""

    output: Path
    seeds: Dict[str, Sequence[int]] = field(
        default_factory=lambda: {"classification": tuple(range(10)), "detection": tuple(range(5))}
    )
    tasks: Sequence[str] = TASKS
    opts: Dict[str, List[str]] = field(default_factory=dict)
    scale: str = "full"

    def __post_init__(self):
        self.output = Path(self.output)
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"unknown tasks {unknown}; the tasks are {list(TASKS)}")
        for task in self.tasks:
            if len(set(self.seeds[task])) < 2:
                raise ValueError(
                    f"a comparison needs at least 2 distinct seeds, got {list(self.seeds[task])} "
                    f"for {task}"
                )

    def plan(self) -> List[Job]:
        """Every job in the order it runs: task by task, seed by seed, the derived arms right
        after the DDW model they come from."""
        jobs_ = []
        for task in (t for t in TASKS if t in self.tasks):
            for seed in self.seeds[task]:
                if task == "detection":
                    for name in dict.fromkeys(PRETRAINING.values()):
                        jobs_.append(Job(task, "pretrain", name, seed))
                for candidate in ARMS[task]:
                    if candidate.of is None:
                        jobs_.append(Job(task, "train", candidate.name, seed))
                jobs_.append(Job(task, "derived", "ddw", seed))
        return jobs_

    def folder(self, task: str, name: str, seed: int) -> Path:
        return self.output / task / name / f"seed{seed}"

    def result(self, task: str, name: str, seed: int) -> Optional[Dict]:
        path = self.folder(task, name, seed) / RESULT
        return json.loads(path.read_text()) if path.is_file() else None

    def _outputs(self, job: Job) -> Dict[str, Path]:
        """The result files a job writes, by arm (or ``pretrain``)."""
        if job.kind == "derived":
            derived = [a.name for a in ARMS[job.task] if a.of == job.arm]
            return {name: self.folder(job.task, name, job.seed) / RESULT for name in derived}
        name = f"pretrain-{job.arm}" if job.kind == "pretrain" else job.arm
        return {name: self.folder(job.task, name, job.seed) / RESULT}

    def claim_output(self) -> None:
        """Refuse an ``output`` that holds a comparison of other settings; write the manifest."""
        opts = {key: list(self.opts.get(key, [])) for key in sorted(CONFIGS)}
        ours = {"opts": opts, "scale": self.scale}
        claim_folder(self.output, MANIFEST, ours, "a comparison")

    def run(self) -> Dict[str, Dict]:
        """Run every job that has not left its results; returns ``{task/arm/seed<k>: result}``
        of every arm."""
        self.claim_output()
        plan = self.plan()
        for number, job in enumerate(plan, 1):
            outputs = self._outputs(job)
            done = all(path.is_file() for path in outputs.values())
            banner(f"[{number}/{len(plan)}] {job.name}: {'reusing' if done else 'running'}")
            if not done:
                for path in outputs.values():
                    path.parent.mkdir(parents=True, exist_ok=True)
                run_in_child(job.name, *self._call(job, outputs))
        return self.results()

    def results(self) -> Dict[str, Dict]:
        found = {}
        for task in self.tasks:
            for candidate in ARMS[task]:
                for seed in self.seeds[task]:
                    result = self.result(task, candidate.name, seed)
                    if result is not None:
                        found[f"{task}/{candidate.name}/seed{seed}"] = result
                if task == "detection":
                    for name in dict.fromkeys(PRETRAINING.values()):
                        for seed in self.seeds[task]:
                            result = self.result(task, f"pretrain-{name}", seed)
                            if result is not None:
                                found[f"{task}/pretrain-{name}/seed{seed}"] = result
        return found

    # --- what each job calls ------------------------------------------------------------
    def _call(self, job: Job, outputs: Dict[str, Path]):
        paths = {k: str(v) for k, v in outputs.items()}
        if job.task == "classification":
            config, opts = self.classification_args(job.arm, job.seed)
            if job.kind == "derived":
                return evaluate_classifier_arms, config, opts, paths, job.seed
            return jobs.pretrain, config, opts, paths[job.arm]
        if job.kind == "pretrain":
            config, opts = self.pretrain_args(job.arm, job.seed)
            return jobs.pretrain, config, opts, paths[f"pretrain-{job.arm}"]
        config, opts = self.detection_args(job.arm, job.seed)
        if job.kind == "derived":
            return evaluate_detector_arms, config, opts, paths, job.seed
        return jobs.detect, config, opts, paths[job.arm]

    def classification_args(self, name: str, seed: int):
        """``(config file, overrides)`` of a classification arm."""
        opts = [
            *arm("classification", name).opts,
            *TRAIN_THROUGH_COLLAPSE,
            "CLS.DATA_ROOT",
            str(mixed_root(self.scale)),
            "CLS.SEED",
            str(seed),
            *self.opts.get("classification", []),
            "OUTPUT_DIR",
            str(self.folder("classification", name, seed)),
        ]
        return get_config_file(CONFIGS["classification"]), opts

    def pretrain_args(self, name: str, seed: int):
        """``(config file, overrides)`` of a detection arm's pretraining on the shapes crops."""
        opts = [
            *arm("detection", name).opts,
            *TRAIN_THROUGH_COLLAPSE,
            "CLS.DATA_ROOT",
            str(shapes_classification_root()),
            "CLS.SEED",
            str(seed),
            *self.opts.get("pretrain", []),
            "OUTPUT_DIR",
            str(self.folder("detection", f"pretrain-{name}", seed)),
        ]
        return get_config_file(CONFIGS["pretrain"]), opts

    def detection_args(self, name: str, seed: int):
        """``(config file, overrides)`` of a detection arm, starting from its pretraining."""
        pretrained = self.folder("detection", f"pretrain-{PRETRAINING[name]}", seed)
        opts = [
            *arm("detection", name).opts,
            *TRAIN_THROUGH_COLLAPSE,
            *DETECTION_TEST,
            "SEED",
            str(seed),
            "MODEL.WEIGHTS",
            str(pretrained / "backbone_detectron2.pth"),
            *self.opts.get("detection", []),
            "OUTPUT_DIR",
            str(self.folder("detection", name, seed)),
        ]
        return get_config_file(CONFIGS["detection"]), opts
