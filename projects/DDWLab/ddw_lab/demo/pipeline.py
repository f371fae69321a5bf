"""The main job in miniature (``make demo``): a classification set cut from the shape generator,
the DDW backbone pretrained on it by the classification trainer, the exported
``backbone_detectron2.pth`` handed to Detectron2 as ``MODEL.WEIGHTS`` (every backbone key
checked), Faster R-CNN FPN trained with Detectron2's engine and evaluated with pycocotools, and
an HTML report. Each training runs in a fresh process (:func:`..process.run_in_child`) that
calls the library, so the pipeline works from an installed package as from the repository.

The output folder holds ``pretrain/``, ``detect/``, ``report/`` and ``demo_run.json``, which
names the configs of the run. A finished step is reused by the next run; an interrupted one
resumes from its last checkpoint (an epoch in pretraining, ``SOLVER.CHECKPOINT_PERIOD`` in
detection). A folder that holds a run of other configs is refused.
"""

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ddw_detectron.config import load_config
from ddw_detectron.model_zoo import get_config_file
from ddw_lab import jobs
from ddw_lab.data.shapes import ensure_shapes_split, shapes_classification_root
from ddw_lab.manifest import FolderConflict, claim_folder
from ddw_lab.process import banner, run_in_child

__all__ = [
    "STEPS",
    "DEMO_CONFIGS",
    "DemoPipeline",
    "DemoFolderConflict",
    "HandOffError",
    "check_handoff",
]

STEPS = ("data", "pretrain", "handoff", "detect", "report")
# Shipped configs (relative to configs/, found through the model zoo), or paths.
DEMO_CONFIGS = {
    "pretrain": "Demo/pretrain_DDW_R_34_shapes.yaml",
    "detect": "Demo/faster_rcnn_DDW_R_34_FPN_shapes.yaml",
}
MANIFEST = "demo_run.json"
RESTART_HINT = (
    "give another output folder (make demo DEMO_OUTPUT=...) or start over (make demo RESTART=1)"
)


class DemoFolderConflict(FolderConflict):
    """The output folder holds a run of other configs."""


class HandOffError(RuntimeError):
    """The pretrained backbone does not load completely into the detector."""


def _pretrain_config(path: str, opts: Sequence[str]):
    from ddw_detectron.classification import add_classification_config

    return load_config(path, list(opts), extra=[add_classification_config])


def _fingerprint(cfg) -> str:
    """Hash of a config without its machine-dependent paths."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.OUTPUT_DIR = ""
    if "CLS" in cfg:
        cfg.CLS.DATA_ROOT = ""
    return hashlib.sha256(cfg.dump().encode()).hexdigest()[:16]


def check_handoff(detection_cfg, weights: str) -> Dict[str, List[str]]:
    """Load ``weights`` (an exported backbone) into the detector of ``detection_cfg`` with
    Detectron2's checkpointer and list the backbone keys it leaves missing and the keys of the
    file that found no place. Raises :class:`HandOffError` if either list is not empty."""
    from detectron2.modeling import build_model

    from ddw_detectron.checkpoint import DDWCheckpointer, model_facts

    model = build_model(detection_cfg)
    checkpointer = DDWCheckpointer(model, facts=model_facts(detection_cfg))
    checkpointer.load(weights)
    incompatible = checkpointer.last_incompatible
    backbone = [k for k in model.state_dict() if k.startswith("backbone.bottom_up.")]
    result = {
        "backbone_keys": backbone,
        "missing": [k for k in incompatible.missing_keys if k.startswith("backbone.bottom_up.")],
        "unexpected": list(incompatible.unexpected_keys),
        "incorrect_shapes": [k for k, _, _ in incompatible.incorrect_shapes],
    }
    if result["missing"] or result["unexpected"] or result["incorrect_shapes"]:
        raise HandOffError(
            f"{weights} does not load completely into the detector's backbone: missing "
            f"{result['missing'][:5]}, unexpected {result['unexpected'][:5]}, other shapes "
            f"{result['incorrect_shapes'][:5]}"
        )
    return result


@dataclass
class DemoPipeline:
    """The demo's steps over ``output``. ``*_opts`` are ``KEY VALUE`` config overrides."""

    output: Path
    pretrain_config: str = DEMO_CONFIGS["pretrain"]
    detection_config: str = DEMO_CONFIGS["detect"]
    pretrain_opts: List[str] = field(default_factory=list)
    detection_opts: List[str] = field(default_factory=list)

    def __post_init__(self):
        self.output = Path(self.output)
        self.pretrain_dir = self.output / "pretrain"
        self.detect_dir = self.output / "detect"
        self.report_dir = self.output / "report"
        self.backbone_weights = self.pretrain_dir / "backbone_detectron2.pth"

    # --- configs and the folder's manifest ------------------------------------------------
    def pretrain_cfg(self):
        return _pretrain_config(self._path(self.pretrain_config), self.pretrain_opts)

    def detection_cfg(self):
        opts = [
            "MODEL.WEIGHTS",
            str(self.backbone_weights),
            "OUTPUT_DIR",
            str(self.detect_dir),
            *self.detection_opts,
        ]
        return load_config(self._path(self.detection_config), opts)

    def pretrain_overrides(self) -> List[str]:
        """The pretraining config's overrides: the shapes classification set and the folder."""
        return [
            "CLS.DATA_ROOT",
            str(shapes_classification_root()),
            "OUTPUT_DIR",
            str(self.pretrain_dir),
            *self.pretrain_opts,
        ]

    @staticmethod
    def _path(config: str) -> str:
        """A config file: ``config`` itself when it is a file, else a shipped config."""
        return config if Path(config).is_file() else get_config_file(config)

    def manifest(self) -> Dict:
        return {
            "pretrain_config": self.pretrain_config,
            "detection_config": self.detection_config,
            "pretrain_opts": list(self.pretrain_opts),
            "detection_opts": list(self.detection_opts),
            "fingerprint": _fingerprint(self.pretrain_cfg()) + _fingerprint(self.detection_cfg()),
        }

    def claim_output(self, restart: bool = False) -> None:
        """Start over (``restart``), or check that ``output`` is empty or holds a run of these
        configs; write the manifest."""
        if restart and self.output.exists():
            shutil.rmtree(self.output)
        ours = self.manifest()
        path = self.output / MANIFEST
        if path.is_file():
            theirs = json.loads(path.read_text())
            if theirs.get("fingerprint") != ours["fingerprint"]:
                then, now = _describe(theirs), _describe(ours)
                if then == now:
                    now += " as they read now (the files have changed since that run)"
                raise DemoFolderConflict(
                    f"{self.output} holds a demo run of {then}, not of {now}. "
                    f"{RESTART_HINT.capitalize()}."
                )
        elif self.output.exists() and any(self.output.iterdir()):
            raise DemoFolderConflict(
                f"{self.output} holds files of another run ({_describe_foreign(self.output)}) and "
                f"no {MANIFEST}; this run is {_describe(ours)}. {RESTART_HINT.capitalize()}."
            )
        claim_folder(self.output, MANIFEST, ours, "a demo run", RESTART_HINT)

    # --- steps ---------------------------------------------------------------------------
    def run(self, steps: Sequence[str] = STEPS, restart: bool = False) -> Optional[Dict]:
        unknown = [s for s in steps if s not in STEPS]
        if unknown:
            raise ValueError(f"unknown demo steps {unknown}; the steps are {list(STEPS)}")
        self.claim_output(restart)
        results = None
        for number, step in enumerate(steps, 1):
            banner(f"[{number}/{len(steps)}] {step}")
            start = time.perf_counter()
            results = getattr(self, f"step_{step}")() or results
            print(f"[{step}] done in {time.perf_counter() - start:.0f} s", flush=True)
        return results

    def step_data(self) -> None:
        root = shapes_classification_root()
        print(f"classification set (ImageFolder): {root}", flush=True)
        detection = self.detection_cfg()
        for name in list(detection.DATASETS.TRAIN) + list(detection.DATASETS.TEST):
            if name.startswith("ddw_shapes_"):
                print(f"{name}: {ensure_shapes_split(name[len('ddw_shapes_') :])}", flush=True)

    def step_pretrain(self) -> None:
        if self.backbone_weights.is_file():
            print(f"reusing the pretrained backbone {self.backbone_weights}", flush=True)
            return
        config, opts = self._path(self.pretrain_config), self.pretrain_overrides()
        run_in_child(
            "pretraining", jobs.pretrain, config, opts, str(self.pretrain_dir / "result.json")
        )

    def step_handoff(self) -> None:
        result = check_handoff(self.detection_cfg(), str(self.backbone_weights))
        print(
            f"hand-off: {self.backbone_weights} -> detector: {len(result['backbone_keys'])} "
            "backbone keys, "
            f"{len(result['missing'])} missing, {len(result['unexpected'])} unexpected, "
            f"{len(result['incorrect_shapes'])} of other shapes",
            flush=True,
        )

    def step_detect(self) -> Dict:
        results = self.detect_dir / "final_results.json"
        if results.is_file():
            print(f"reusing the trained detector in {self.detect_dir}", flush=True)
        else:
            opts = [
                "MODEL.WEIGHTS",
                str(self.backbone_weights),
                "OUTPUT_DIR",
                str(self.detect_dir),
                *self.detection_opts,
            ]
            config = self._path(self.detection_config)
            run_in_child(
                "detection", jobs.detect, config, opts, str(self.detect_dir / "result.json")
            )
        return json.loads(results.read_text())

    def step_report(self) -> Dict:
        from ddw_detectron.engine.runner import print_summary
        from ddw_lab.demo.report import write_demo_report

        results = json.loads((self.detect_dir / "final_results.json").read_text())
        index = write_demo_report(
            self.detection_cfg(),
            self.detect_dir,
            self.pretrain_dir,
            self.report_dir,
            config=self._path(self.detection_config),
        )
        print_summary(results)
        print(f"report: {index}", flush=True)
        return results


def _describe(manifest: Dict) -> str:
    opts = manifest.get("pretrain_opts", []) + manifest.get("detection_opts", [])
    text = f"{manifest.get('pretrain_config')} + {manifest.get('detection_config')}"
    return text + (f" with {' '.join(opts)}" if opts else "")


def _describe_foreign(folder: Path) -> str:
    config = next(iter(sorted(folder.glob("**/config.yaml"))), None)
    if config is None:
        return "unknown config"
    from ddw_detectron.config import read_yaml

    cfg = read_yaml(str(config))
    model = cfg.get("MODEL", {})
    depth = model.get("RESNETS", {}).get("DEPTH", "?")
    return f"{config}: backbone {model.get('BACKBONE', {}).get('NAME', '?')}, depth {depth}"
