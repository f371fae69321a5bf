import pytest

from ddw_lab.compare.arms import ARMS
from ddw_lab.compare.report import _arms_table, summarize


def _results(task, figures_by_seed):
    results = {}
    for seed, figures in enumerate(figures_by_seed):
        for arm in ARMS[task]:
            top1 = figures[arm.name]
            results[f"{task}/{arm.name}/seed{seed}"] = {
                "top1": top1,
                "val_loss": 3.0 - top1 / 50,
                "train_seconds": 100.0,
            }
    return results


def test_summary_over_seeds_by_hand():
    rows = [
        dict(static=70, static_dag=71, ddw=74, ddw_chain_init=73, frozen=72, shuffled=65),
        dict(static=71, static_dag=72, ddw=76, ddw_chain_init=74, frozen=73, shuffled=66),
        dict(static=69, static_dag=70, ddw=75, ddw_chain_init=75, frozen=70, shuffled=64),
    ]
    results = _results("classification", rows)
    summary = summarize(results, {"classification": [0, 1, 2, 3]})["classification"]
    assert summary["seeds"] == [0, 1, 2]  # seed 3 has not run
    assert summary["arms"]["ddw"]["top1"]["per_seed"] == [74, 76, 75]
    assert summary["arms"]["static"]["top1"]["std"] == pytest.approx(1.0)
    per_image = summary["contrasts"]["ddw - static_dag"]["top1"]
    assert per_image["per_seed"] == [3, 4, 5] and per_image["verdict"] == "ahead"
    assert summary["contrasts"]["shuffled - ddw"]["top1"]["verdict"] == "behind"
    assert summary["contrasts"]["ddw - static"]["val_loss"]["mean"] == pytest.approx(-0.1)
    assert summary["train_seconds"]["ddw"]["mean"] == 100.0
    assert "frozen" not in summary["train_seconds"]  # derived, not retrained


def test_a_task_with_fewer_than_two_complete_seeds_is_left_out():
    rows = [dict(static=70, static_dag=71, ddw=74, ddw_chain_init=73, frozen=72, shuffled=65)]
    results = _results("classification", rows)
    assert summarize(results, {"classification": [0, 1]}) == {}


def test_a_run_that_learned_nothing_is_named_and_left_out_of_the_post_hoc_view():
    rows = [
        dict(static=70, static_dag=71, ddw=74, ddw_chain_init=73, frozen=72, shuffled=65),
        dict(static=71, static_dag=72, ddw=6.2, ddw_chain_init=74, frozen=6.2, shuffled=6.2),
        dict(static=69, static_dag=70, ddw=75, ddw_chain_init=75, frozen=70, shuffled=64),
    ]
    summary = summarize(_results("classification", rows), {"classification": [0, 1, 2]})
    entry = summary["classification"]
    assert entry["collapsed"] == {"ddw": [1], "frozen": [1], "shuffled": [1]}
    post_hoc = entry["contrasts_without_collapses"]["ddw - static_dag"]
    assert post_hoc["seeds"] == [0, 2] and post_hoc["per_seed"] == [3, 5]
    assert "static_dag - static" not in entry["contrasts_without_collapses"]  # none collapsed
    table = {line.split(" | ")[0][2:]: line for line in _arms_table("classification", entry)}
    ddw = table["DDW (per-image wiring)"]
    assert "74.00, **6.20**, 75.00 | 1 of 3 |" in ddw
    assert "| 0 of 3 |" in table["learned static DAG"]


def test_a_collapse_is_what_happened_not_a_top1_cutoff():
    from ddw_lab.compare.report import CHANCE_LOSS, is_collapse

    # The run of issue #38: 10.12% top-1, above any "near chance" cutoff, with 42% of the
    # validation images cut off from the image by res5's wiring.
    assert is_collapse("classification", {"top1": 10.12, "val_loss": 2.2, "val_disconnected": 42})
    assert is_collapse("classification", {"top1": 9.0, "val_loss": CHANCE_LOSS})
    assert not is_collapse(
        "classification", {"top1": 30.0, "val_loss": 2.0, "val_disconnected": 4.9}
    )
    assert is_collapse("detection", {"AP": 0.5}) and not is_collapse("detection", {"AP": 40.0})
