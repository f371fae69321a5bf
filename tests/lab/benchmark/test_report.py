"""The settings table and its entries from hand-made timings: each ratio beside its own floor."""

import pytest

from ddw_lab.benchmark.classification import step_entry
from ddw_lab.benchmark.report import settings_table
from ddw_lab.benchmark.timing import Timings

TIMES = {"static": [1.0, 2.0], "ddw": [1.1, 2.4], "static_compiled": [0.5], "ddw_compiled": [0.6]}


def test_step_entry_floors_over_each_static_time():
    entry = step_entry(Timings(TIMES), moved=10**8, bytes_per_second=10**9)
    assert entry["ratio"] == pytest.approx(1.15) and entry["spread"] == pytest.approx([1.1, 1.2])
    assert entry["floor"] == pytest.approx(1 + 0.1 / 1.5)  # over the eager static median
    assert entry["compiled_ratio"] == pytest.approx(1.2)
    assert entry["compiled_floor"] == pytest.approx(1 + 0.1 / 0.5)
    assert entry["static_compiled_ms"] == pytest.approx(500.0)
    eager_only = {k: v for k, v in TIMES.items() if "compiled" not in k}
    assert not any("compiled" in key for key in step_entry(Timings(eager_only), 10**8, 10**9))


def _report(compiled: bool):
    ratios = {
        "train_step": 1.03,
        "inference_backbone": 1.04,
        "spread": {"train_step": [1.01, 1.05], "inference_backbone": [1.02, 1.06]},
        "saved_bytes": 1.001,
    }
    floors = {"eager": {"train_step": 1.02, "inference_backbone": 1.01}}
    if compiled:
        ratios["compiled"] = {"train_step": 1.025, "inference_backbone": 1.066}
        floors["compiled"] = {"train_step": 1.0219, "inference_backbone": 1.0391}
    entry = step_entry(Timings(TIMES if compiled else {"static": [1.0], "ddw": [1.1]}), 10**8, 1e9)
    setting = {"config": "a.yaml", "steps": {"train_step": entry}, "peak_memory_ratio": 1.004}
    return {
        "arch": "R-50",
        "image_size": 512,
        "batch_size": 2,
        "bandwidth": 1e9,
        "ratios": ratios,
        "floors": floors,
        "classification": {"R-50, 224 px": setting},
    }


def test_settings_table_puts_each_compiled_ratio_beside_its_floor():
    lines = settings_table(_report(compiled=True))
    rows = [line.split(" | ") for line in lines if line.startswith("| ") and "x1." in line]
    assert len(rows) == 3 and all(len(row) == 8 for row in rows)
    training, inference, classification = rows
    assert training[2:] == ["x1.030 (1.010-1.050)", "x1.020", "1.5", "x1.025", "x1.022", "x1.001 |"]
    assert inference[4:7] == ["4.0", "x1.066", "x1.039"]
    assert classification[0] == "| R-50, 224 px (`a.yaml`)" and classification[5:7] == [
        "x1.200",
        "x1.200",
    ]


def test_settings_table_leaves_compiled_cells_empty_without_compiled_models():
    lines = settings_table(_report(compiled=False))
    rows = [line.split(" | ") for line in lines if line.startswith("| ") and "x1." in line]
    assert len(rows) == 3 and all(row[5:7] == ["", ""] for row in rows)


def test_a_kernel_column_per_extra_kernel_and_the_light_report():
    from ddw_lab.benchmark.report import markdown_table

    report = _report(compiled=False)
    report["ratios"]["kernels"] = {"triton": {"train_step": 1.011, "inference_backbone": 1.022}}
    entry = report["classification"]["R-50, 224 px"]["steps"]["train_step"]
    entry["kernels"] = {"triton": {"ratio": 1.033}}
    report["light"] = True
    lines = markdown_table(report).splitlines()
    assert "| eager DDW / static, triton kernel |" in lines[0]
    rows = [line.split(" | ") for line in lines if line.startswith("| ") and "x1." in line]
    assert [row[5] for row in rows] == ["x1.011", "x1.022", "x1.033"]
    assert not any("The detector in detail" in line for line in lines)  # light: timings only
