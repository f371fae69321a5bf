"""Where DDW's extra time goes: a classification setting's training step (or inference) under
``torch.profiler``, DDW and its static twin in turns, and the operators whose self time grew
most, each with its share of DDW's excess."""

from typing import Dict, List, Tuple

from torch.profiler import ProfilerActivity, profile

from ddw_lab.benchmark.classification import SETTINGS, classification_models, step_functions

__all__ = ["operator_excess", "format_operator_excess"]


def _self_times(step, rounds: int) -> Dict[str, float]:
    """``{operator: self CPU milliseconds per call of step}``."""
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(rounds):
            step()
    return {e.key: e.self_cpu_time_total / 1e3 / rounds for e in profiler.key_averages()}


def operator_excess(
    setting: str, step: str = "train_step", rounds: int = 5, warmup: int = 2, top: int = 10
) -> Dict:
    """Profile ``step`` of ``setting`` (a key of ``SETTINGS``) on the CPU: static, DDW, static,
    DDW (the second pair counts, so both sides are warm). Returns ``setting``, ``step``,
    ``static_ms`` and ``ddw_ms`` (total self time per step) and ``operators``:
    ``[(name, extra ms, share of the excess)]`` for the ``top`` operators whose self time grew
    most."""
    models = classification_models(SETTINGS[setting][0], "cpu")
    steps = step_functions(setting, models, "cpu", amp=False)
    times: Dict[str, Dict[str, float]] = {}
    for kind in ("static", "ddw", "static", "ddw"):
        for _ in range(warmup):
            steps[kind][step]()
        times[kind] = _self_times(steps[kind][step], rounds)
    totals = {kind: sum(values.values()) for kind, values in times.items()}
    excess = totals["ddw"] - totals["static"]
    names = set(times["ddw"]) | set(times["static"])
    growth = {n: times["ddw"].get(n, 0.0) - times["static"].get(n, 0.0) for n in names}
    ranked: List[Tuple[str, float, float]] = [
        (name, extra, extra / excess if excess else float("nan"))
        for name, extra in sorted(growth.items(), key=lambda item: -item[1])[:top]
    ]
    return {
        "setting": setting,
        "step": step,
        "static_ms": totals["static"],
        "ddw_ms": totals["ddw"],
        "operators": ranked,
    }


def format_operator_excess(result: Dict) -> str:
    """:func:`operator_excess`'s result as a line and a Markdown table."""
    static, ddw = result["static_ms"], result["ddw_ms"]
    lines = [
        f"{result['setting']}, {result['step']}: self CPU time per step, static {static:.0f} ms, "
        f"DDW {ddw:.0f} ms (x{ddw / static:.3f}, profiled)",
        "| operator | extra ms per step | share of DDW's excess |",
        "|---|---|---|",
    ]
    for name, extra, share in result["operators"]:
        lines.append(f"| `{name}` | {extra:+.1f} | {share:.0%} |")
    return "\n".join(lines)
