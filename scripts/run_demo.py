#!/usr/bin/env python
"""The main job in one command (what ``make demo`` runs): shapes classification set ->
DDW backbone pretraining (the classification trainer) -> hand-off of backbone_detectron2.pth
-> Faster R-CNN FPN (Detectron2's engine, COCO AP) -> OUTPUT/report/index.html.

    python scripts/run_demo.py --output output/demo            # all steps; finished ones reused
    python scripts/run_demo.py --output output/demo --restart  # start over
    python scripts/run_demo.py --output output/demo --steps detect report
    python scripts/run_demo.py --output output/demo --detection-opts SOLVER.MAX_ITER 100
"""

import argparse

from ddw_detectron.errors import exit_on_user_errors
from ddw_lab.demo.pipeline import (
    DEMO_CONFIGS,
    STEPS,
    DemoFolderConflict,
    DemoPipeline,
    HandOffError,
)
from ddw_lab.process import JobFailed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="output/demo", help="the run's folder")
    parser.add_argument(
        "--steps", nargs="+", default=list(STEPS), choices=STEPS, help="steps to run (all)"
    )
    parser.add_argument("--restart", action="store_true", help="delete the output folder first")
    parser.add_argument(
        "--pretrain-config", default=DEMO_CONFIGS["pretrain"], help="a file or shipped config"
    )
    parser.add_argument(
        "--detection-config", default=DEMO_CONFIGS["detect"], help="a file or shipped config"
    )
    parser.add_argument(
        "--pretrain-opts", nargs="*", default=[], help="KEY VALUE overrides of pretraining"
    )
    parser.add_argument(
        "--detection-opts", nargs="*", default=[], help="KEY VALUE overrides of detection"
    )
    args = parser.parse_args(argv)
    pipeline = DemoPipeline(
        args.output,
        args.pretrain_config,
        args.detection_config,
        args.pretrain_opts,
        args.detection_opts,
    )
    with exit_on_user_errors("run_demo", DemoFolderConflict, HandOffError, JobFailed):
        pipeline.run(args.steps, restart=args.restart)


if __name__ == "__main__":
    main()
