"""``scripts/compare.py`` end to end at tiny sizes with 2 seeds (the classification task; the
detection jobs are tested in test_jobs.py): killed after its first finished job and resumed
without redoing it; its plan; refused settings."""

import json
from pathlib import Path

import pytest

from ddw_lab.compare import Comparison
from ddw_lab.manifest import FolderConflict
from tests.helpers import python_command, run_python, run_until

pytestmark = pytest.mark.long(90)

TINY = ["CLS.EPOCHS", "1", "CLS.BATCH_SIZE", "16"]


def test_plan_runs_derived_arms_after_their_model_and_shares_detection_pretraining(tmp_path):
    plan = Comparison(tmp_path, seeds={"classification": (0, 1), "detection": (0, 1)}).plan()
    names = [job.name for job in plan]
    assert names[:5] == [
        "classification/static/seed0",
        "classification/static_dag/seed0",
        "classification/ddw/seed0",
        "classification/ddw_chain_init/seed0",
        "classification/derived-from-ddw/seed0",
    ]
    detection = [n for n in names if n.startswith("detection/") and n.endswith("seed0")]
    assert detection == [
        "detection/pretrain-static/seed0",
        "detection/pretrain-static_dag/seed0",
        "detection/pretrain-ddw/seed0",
        "detection/static/seed0",
        "detection/static_dag/seed0",
        "detection/ddw/seed0",
        "detection/ddw_fixed_routers/seed0",
        "detection/derived-from-ddw/seed0",
    ]
    _, opts = Comparison(tmp_path).detection_args("ddw_fixed_routers", 2)
    weights = opts[opts.index("MODEL.WEIGHTS") + 1]
    assert weights.endswith("detection/pretrain-ddw/seed2/backbone_detectron2.pth")


def test_near_chain_arm_warms_the_threshold_up_and_the_random_start_does_not(tmp_path):
    def overrides(name):
        _, opts = Comparison(tmp_path).classification_args(name, 3)
        return dict(zip(opts[::2], opts[1::2]))

    near_chain, random_start = overrides("ddw_chain_init"), overrides("ddw")
    assert near_chain["MODEL.DDW.ROUTER_INIT_CHAIN"] == "0.99"
    assert near_chain["MODEL.DDW.THRESHOLD_WARMUP_ITERS"] == "156"
    assert near_chain["CLS.SEED"] == random_start["CLS.SEED"] == "3"
    assert "MODEL.DDW.THRESHOLD_WARMUP_ITERS" not in random_start
    assert "MODEL.DDW.ROUTER_INIT_CHAIN" not in random_start


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown tasks \\['segmentation'\\]"):
        Comparison(tmp_path, tasks=["segmentation"])
    with pytest.raises(ValueError, match="at least 2 distinct seeds"):
        Comparison(tmp_path, seeds={"classification": (0, 0), "detection": (0, 1)})
    Comparison(tmp_path, opts={"classification": ["CLS.EPOCHS", "1"]}).claim_output()
    with pytest.raises(FolderConflict, match="CLS.EPOCHS"):
        Comparison(tmp_path, opts={"classification": ["CLS.EPOCHS", "2"]}).claim_output()


def _args(output: Path):
    return [
        "--output", output, "--tasks", "classification", "--seeds", "0", "1", "--scale", "tiny",
        "--evidence", output / "EVIDENCE.md", "--classification-opts", *TINY,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def compared(cache, module_folder):
    output = module_folder("compare")
    env = {"DDW_DATASETS_CACHE": cache}
    first = output / "classification" / "static" / "seed0" / "result.json"
    run_until(python_command("scripts/compare.py", *_args(output)), env, first)
    written = first.stat().st_mtime_ns
    result = run_python("scripts/compare.py", *_args(output), env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert first.stat().st_mtime_ns == written
    return output, result.stdout


def test_killed_comparison_resumes_without_redoing_finished_jobs(compared):
    _, stdout = compared
    assert "classification/static/seed0: reusing" in stdout
    assert "classification/static_dag/seed0: running" in stdout


def test_tables_json_and_plot_are_written_with_every_arm(compared):
    output, stdout = compared
    document = json.loads((output / "comparison.json").read_text())
    entry = document["summary"]["classification"]
    assert entry["seeds"] == [0, 1]
    assert set(entry["arms"]) == {
        "static", "static_dag", "ddw", "ddw_chain_init", "frozen", "shuffled"
    }  # fmt: skip
    assert {"top1", "val_loss", "changed_predictions"} <= set(entry["arms"]["shuffled"])
    paired = entry["contrasts"]["ddw - static_dag"]["top1"]
    assert len(paired["per_seed"]) == 2 and paired["ci95"][0] <= paired["mean"] <= paired["ci95"][1]
    table = (output / "comparison.md").read_text()
    assert "| learned static DAG |" in table and "95% interval" in table
    assert (output / "comparison.png").stat().st_size > 10_000
    assert (output / "EVIDENCE.md").read_text().startswith("# Does dynamic wiring help?")
    assert (output / "docs" / "evidence_comparison.png").is_file()
    assert "classification: ddw - static_dag top1" in stdout
