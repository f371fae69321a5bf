import torch

from ddw_lab.benchmark.kernels import DRY_SHAPES, kernels_markdown, measure_kernels


def test_the_kernels_agree_and_are_timed_side_by_side():
    report = measure_kernels("cpu", torch.float64, repeats=1, warmup=0, shapes=DRY_SHAPES)
    assert list(report) == list(DRY_SHAPES)
    for entry in report.values():
        assert entry["difference"] < 1e-12  # float64: the fused kernel sums what eager sums
        for step in ("forward", "train"):
            timing = entry[step]
            assert timing["eager_ms"] > 0 and timing["triton_ms"] > 0
            assert abs(timing["ratio"] - timing["triton_ms"] / timing["eager_ms"]) < 1e-6
    table = kernels_markdown(report, "float64").splitlines()
    assert table[0].startswith("| node input (float64) | forward: eager / triton (ms)")
    assert [row.split(" | ")[0] for row in table[2:]] == [f"| {name}" for name in DRY_SHAPES]
