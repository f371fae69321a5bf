#!/usr/bin/env python
"""Does dynamic wiring help? Trains the static network and the DDW network with one recipe,
budget, data order and seed, freezes each trained DDW model to its mean wiring, and evaluates
the three, over seeds (what ``make compare`` runs; an hour or more on a 2-core CPU).

    python scripts/compare.py --output output/compare --evidence EVIDENCE.md
    python scripts/compare.py --output output/compare --tasks digits --seeds 0 1 2 3 4
    python scripts/compare.py --output output/quick --detection-opts SOLVER.MAX_ITER 100

Writes comparison.md, comparison.json and comparison.png into the output folder. Finished runs
are reused and an interrupted run resumes from its last checkpoint: rerun the same command.
"""

import argparse
import shlex
import sys

from ddw_detectron.compare import TASKS, Comparison, ComparisonConflict, write_outputs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="output/compare")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--evidence", help="also write the Markdown here (e.g. EVIDENCE.md)")
    for name in ("pretrain", "detection", "digits"):
        parser.add_argument(
            f"--{name}-opts", nargs="*", default=[], help=f"KEY VALUE overrides of {name}"
        )
    args = parser.parse_args(argv)
    comparison = Comparison(
        args.output,
        seeds=args.seeds,
        tasks=args.tasks,
        pretrain_opts=args.pretrain_opts,
        detection_opts=args.detection_opts,
        digits_opts=args.digits_opts,
    )
    try:
        results = comparison.run()
    except (ComparisonConflict, RuntimeError) as exc:
        sys.exit(f"compare: error: {exc}")
    command = shlex.join(
        ["python", "scripts/compare.py", *(sys.argv[1:] if argv is None else argv)]
    )
    summary = write_outputs(comparison, results, command, args.evidence)
    for benchmark, entry in summary.items():
        paired = entry["paired"]["DDW - static"]
        print(
            f"{benchmark}: DDW - static {paired['mean']:+.2f} ± {paired['std']:.2f} "
            f"({paired['verdict']})"
        )
    print(f"comparison: {comparison.output / 'comparison.md'}")


if __name__ == "__main__":
    main()
