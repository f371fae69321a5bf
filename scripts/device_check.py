#!/usr/bin/env python
"""The prepared device check (what ``make device-check`` runs): the benchmark on CUDA under AMP
at the settings GPU users train with (eager, compiled and with the fused Triton aggregation), the
aggregation kernels alone, AMP training of the demo detector, one AMP pretraining epoch, and
TracingAdapter export on the GPU, in one command of a few minutes on one GPU.

    python scripts/device_check.py --output output/device_check
    python scripts/device_check.py --dry --output output/device_check_dry   # CPU, tiny sizes

Writes device_check.json and device_check.md (a section for BENCHMARKS.md) into the output.
"""

import argparse
import sys

from ddw_lab.device_check import OPTIONAL_STEPS, STEPS, run_device_check


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="output/device_check", help="the report's folder")
    parser.add_argument("--dry", action="store_true", help="every step on the CPU, tiny sizes")
    parser.add_argument(
        "--steps",
        nargs="+",
        choices=STEPS + OPTIONAL_STEPS,
        default=list(STEPS),
        help=f"steps to run (default: {' '.join(STEPS)})",
    )
    args = parser.parse_args(argv)
    try:
        report = run_device_check(args.output, dry=args.dry, steps=args.steps)
    except RuntimeError as exc:
        sys.exit(f"device_check: error: {exc}")
    failed = [step for step, result in report["steps"].items() if not result["ok"]]
    print(f"device check on {report['device']}: {args.output}/device_check.md")
    if failed:
        sys.exit(f"device_check: failed steps: {failed}")


if __name__ == "__main__":
    main()
