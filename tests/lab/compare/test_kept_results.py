"""The comparison's finished runs kept in the repository (``projects/DDWLab/results/compare``):
made with ``make compare``'s settings, whole seeds only, and reused as they are by a rerun."""

import shutil
from pathlib import Path

from ddw_lab.compare import Comparison
from ddw_lab.compare.arms import ARMS, PRETRAINING

KEPT = Path(__file__).resolve().parents[3] / "projects" / "DDWLab" / "results" / "compare"


def _seeds(task: str):
    return sorted(int(p.name[4:]) for p in (KEPT / task / ARMS[task][0].name).glob("seed*"))


def test_kept_seeds_are_whole_and_reused_by_make_compares_settings(tmp_path):
    seeds = _seeds("detection")
    assert seeds, f"no detection seed kept in {KEPT}"
    shutil.copytree(KEPT, tmp_path, dirs_exist_ok=True)
    comparison = Comparison(
        tmp_path, seeds={"classification": (0, 1), "detection": seeds}, tasks=["detection"]
    )
    comparison.claim_output()  # raises FolderConflict if they were made with other settings
    results = comparison.results()
    pretrained = [f"pretrain-{name}" for name in set(PRETRAINING.values())]
    names = [a.name for a in ARMS["detection"]] + pretrained
    expected = {f"detection/{name}/seed{seed}" for name in names for seed in seeds}
    assert set(results) == expected
    assert all(0.0 < results[key]["AP"] <= 100.0 for key in expected if "pretrain" not in key)
    assert all(0.0 < results[key]["top1"] <= 100.0 for key in expected if "pretrain" in key)
