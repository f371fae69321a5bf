"""``scripts/compare.py`` (``ddw_detectron.compare``): the summary and verdict by hand, refused
settings, and the command line end to end at tiny sizes with 2 seeds, killed after its first
finished run and resumed without redoing it."""

import json
from pathlib import Path

import pytest

from ddw_detectron.compare import Comparison, ComparisonConflict, RunSpec, summarize, verdict
from tests.helpers import (
    TINY_DEMO_DETECTION,
    TINY_PRETRAINING,
    python_command,
    run_python,
    run_until,
)

pytestmark = pytest.mark.long(130)


def test_verdict_calls_a_difference_inside_the_spread_a_tie():
    assert verdict([1.0, 2.0, 1.5], spreads=[0.4, 0.5]) == "ahead"
    assert verdict([-1.0, -2.0, -1.5], spreads=[0.4, 0.5]) == "behind"
    assert verdict([1.0, 2.0, 1.5], spreads=[0.4, 1.6]) == "tie"  # inside a model's spread
    assert verdict([3.0, -0.1, 3.0], spreads=[0.1, 0.1]) == "tie"  # one seed disagrees


def _digits_result(top1, seconds=10.0):
    return {"digits": {"top1": top1}, "train_seconds": {"digits": seconds}}


def test_summary_over_seeds_by_hand():
    results = {}
    for seed, (static, ddw, frozen) in enumerate([(90, 92, 91), (91, 94, 90), (89, 93, 89)]):
        results[RunSpec("digits", "static", seed).name] = _digits_result(static)
        results[RunSpec("digits", "ddw", seed).name] = _digits_result(ddw)
        results[RunSpec("digits", "frozen", seed).name] = {"digits": {"top1": frozen}}
    summary = summarize(results, seeds=[0, 1, 2, 3], tasks=["digits"])["digits"]
    assert summary["seeds"] == [0, 1, 2]  # seed 3 has not run
    assert summary["variants"]["ddw"]["top1"]["per_seed"] == [92, 94, 93]
    assert summary["variants"]["static"]["top1"]["mean"] == pytest.approx(90.0)
    assert summary["variants"]["static"]["top1"]["std"] == pytest.approx(1.0)
    paired = summary["paired"]["DDW - static"]
    assert paired["per_seed"] == [2, 3, 4] and paired["verdict"] == "ahead"
    assert summary["paired"]["frozen - DDW"]["per_seed"] == [-1, -4, -4]
    assert summary["paired"]["frozen - DDW"]["verdict"] == "behind"


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown tasks \\['segmentation'\\]"):
        Comparison(tmp_path, tasks=["segmentation"])
    with pytest.raises(ValueError, match="at least 2 distinct seeds"):
        Comparison(tmp_path, seeds=[0, 0])
    Comparison(tmp_path, digits_opts=["CLS.EPOCHS", "1"]).claim_output()
    with pytest.raises(ComparisonConflict, match="CLS.EPOCHS"):
        Comparison(tmp_path, digits_opts=["CLS.EPOCHS", "2"]).claim_output()


def _compare_args(output: Path):
    """scripts/compare.py's arguments: 2 seeds, tiny pretraining and detection, 1 digits epoch."""
    evidence = ["--evidence", output / "EVIDENCE.md"]
    return ["--output", output, "--seeds", "0", "1", *evidence, *(
        "--pretrain-opts", *TINY_PRETRAINING, "--detection-opts", *TINY_DEMO_DETECTION,
        "--digits-opts", "CLS.EPOCHS", "1",
    )]  # fmt: skip


@pytest.fixture(scope="module")
def compared(cache, module_folder):
    output = module_folder("compare")
    env = {"DDW_DATASETS_CACHE": cache}
    first = output / "digits" / "static" / "seed0" / "result.json"
    run_until(python_command("scripts/compare.py", *_compare_args(output)), env, first)
    written = first.stat().st_mtime_ns
    result = run_python("scripts/compare.py", *_compare_args(output), env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert first.stat().st_mtime_ns == written
    return output, result.stdout


def test_killed_comparison_resumes_without_redoing_finished_runs(compared):
    _, stdout = compared
    assert "digits/static/seed0: reusing" in stdout
    assert "digits/ddw/seed0: running" in stdout


def test_table_json_and_plot_are_written_with_the_frozen_row(compared):
    output, stdout = compared
    document = json.loads((output / "comparison.json").read_text())
    assert set(document["summary"]) == {"detection", "shapes", "digits"}
    for entry in document["summary"].values():
        assert set(entry["variants"]) == {"static", "ddw", "frozen"}
        assert entry["seeds"] == [0, 1]
        assert len(entry["paired"]["DDW - static"]["per_seed"]) == 2
    detection = document["summary"]["detection"]["variants"]["ddw"]
    assert {"AP", "AP50", "AP75", "AP-circle", "AP-star"} <= set(detection)
    costs = document["costs"]["detection"]
    assert costs["ddw"]["params"] > costs["static"]["params"]  # the routers
    wiring = document["runs"]["detection/frozen/seed1"]["wiring"]
    assert set(wiring) == {"scikit-image photos", "ddw_shapes_tiny"}
    assert set(wiring["ddw_shapes_tiny"]["stages"]) == {"res2", "res3", "res4", "res5"}
    table = (output / "comparison.md").read_text()
    assert "| DDW, wiring frozen |" in table and "**DDW - static** (AP, paired)" in table
    assert (output / "comparison.png").stat().st_size > 10_000
    assert (output / "EVIDENCE.md").read_text().startswith("# Does dynamic wiring help?")
    assert (output / "docs" / "evidence_comparison.png").is_file()
    assert "detection: DDW - static" in stdout
