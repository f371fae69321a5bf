"""The cost of DDW against the static network, measured side by side in one process
(``scripts/benchmark.py``, ``make bench``)."""

from ddw_lab.benchmark.measure import (
    STEADY_MALLOC,
    BenchmarkOptions,
    Timings,
    interleaved,
    run_benchmark,
    steady_malloc_active,
    wiring_with_unused_nodes,
)
from ddw_lab.benchmark.models import ARCHS, benchmark_cfg, build_models, synthetic_batch
from ddw_lab.benchmark.report import markdown_table, write_benchmark, write_markdown

__all__ = [
    "ARCHS",
    "STEADY_MALLOC",
    "BenchmarkOptions",
    "Timings",
    "benchmark_cfg",
    "build_models",
    "interleaved",
    "markdown_table",
    "run_benchmark",
    "steady_malloc_active",
    "synthetic_batch",
    "wiring_with_unused_nodes",
    "write_benchmark",
    "write_markdown",
]
