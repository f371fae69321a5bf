#!/usr/bin/env python
"""Does the per-image wiring work? Trains the static chain, the learned static DAG and DDW with
one recipe, budget, data order and seed, derives DDW frozen to its mean wiring and DDW with each
image given another image's wiring, evaluates them all, over seeds, and reports paired
differences with 95% confidence intervals (what ``make compare`` runs).

    python scripts/compare.py --output output/compare --evidence EVIDENCE.md
    python scripts/compare.py --output output/compare --tasks classification
    python scripts/compare.py --output output/quick --detection-opts SOLVER.MAX_ITER 100

Finished jobs are reused and an interrupted training resumes from its last checkpoint: rerun
the same command. Writes comparison.md, comparison.json and comparison.png into --output.
"""

import argparse
import shlex
import sys

from ddw_detectron.errors import exit_on_user_errors
from ddw_lab.compare import TASKS, Comparison, write_outputs
from ddw_lab.manifest import FolderConflict
from ddw_lab.process import JobFailed


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="output/compare", help="folder of the runs")
    parser.add_argument(
        "--tasks", nargs="+", choices=TASKS, default=list(TASKS), help="tasks to run"
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=list(range(10)), help="classification seeds"
    )
    parser.add_argument(
        "--detection-seeds", nargs="+", type=int, default=list(range(5)), help="detection seeds"
    )
    parser.add_argument("--evidence", help="also write the Markdown here (e.g. EVIDENCE.md)")
    parser.add_argument(
        "--scale",
        choices=["full", "tiny"],
        default="full",
        help="ddw_mixed at full size or its tiny cut (smoke tests)",
    )
    for name, what in (
        ("classification", "the classification task's config"),
        ("pretrain", "the detection arms' pretraining config"),
        ("detection", "the detection config"),
    ):
        parser.add_argument(
            f"--{name}-opts",
            nargs="*",
            default=[],
            metavar="KEY VALUE",
            help=f"overrides of {what}",
        )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    comparison = Comparison(
        args.output,
        seeds={"classification": args.seeds, "detection": args.detection_seeds},
        tasks=args.tasks,
        opts={
            "classification": args.classification_opts,
            "pretrain": args.pretrain_opts,
            "detection": args.detection_opts,
        },
        scale=args.scale,
    )
    with exit_on_user_errors("compare", FolderConflict, JobFailed):
        results = comparison.run()
    command = shlex.join(
        ["python", "scripts/compare.py", *(sys.argv[1:] if argv is None else argv)]
    )
    summary = write_outputs(comparison, results, command, args.evidence)
    for task, entry in summary.items():
        for name, by_metric in entry["contrasts"].items():
            metric = "top1" if task == "classification" else "AP"
            paired = by_metric[metric]
            low, high = paired["ci95"]
            print(
                f"{task}: {name} {metric} {paired['mean']:+.2f} [{low:+.2f}, {high:+.2f}] "
                f"({paired['verdict']})"
            )
    print(f"comparison: {comparison.output / 'comparison.md'}")


if __name__ == "__main__":
    main()
