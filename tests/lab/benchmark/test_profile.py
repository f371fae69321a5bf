"""The operator profile of a classification setting: DDW's own operators show up as growth, the
ranking is by growth, and the table names them."""

from ddw_lab.benchmark.profile import format_operator_excess, operator_excess

SETTING = "the demo's R-34, 32 px, batch 64"


def test_operator_excess_ranks_the_operators_ddw_adds():
    result = operator_excess(SETTING, rounds=1, warmup=0, top=10_000)
    assert (result["setting"], result["step"]) == (SETTING, "train_step")
    assert result["static_ms"] > 0 and result["ddw_ms"] > 0
    extras = [extra for _, extra, _ in result["operators"]]
    assert extras == sorted(extras, reverse=True)
    growth = {name: extra for name, extra, _ in result["operators"]}
    # The aggregation's backward exists only in DDW: its whole time is growth.
    assert growth["_BufferedAggregateBackward"] > 0
    shown = {**result, "operators": [("_BufferedAggregateBackward", 6.5, 0.295)]}
    table = format_operator_excess(shown)
    assert "| `_BufferedAggregateBackward` | +6.5 | 30% |" in table
    assert table.startswith(f"{SETTING}, train_step: self CPU time per step")
