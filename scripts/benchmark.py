#!/usr/bin/env python
"""Side-by-side cost of DDW against the static network, measured in one process.

    python scripts/benchmark.py --arch R-50 --batch-size 2 --image-size 512 --json bench.json
    python scripts/benchmark.py --profile "R-50, 224 px, batch 8"   # where the extra time goes

Builds the Faster R-CNN FPN detector four ways: Detectron2's own backbone (ResNet only), this
project's static mode (DYNAMIC_STAGES []), DDW on every stage, and DDW with plain autograd sums
(MEMORY_EFFICIENT False, for comparison), with node, FPN and head weights copied between them and
FrozenBatchNorm statistics calibrated on the batch. The models run in turns, the order rotating
every round, after warm-up; a time is the median over rounds and a time ratio the median of the
per-round ratios, so that drifts of the machine hit both sides alike. Memory on CPU is the peak
of bytes allocated during a training step (torch.profiler's memory events), on CUDA
``torch.cuda.max_memory_allocated``; the bytes saved for backward (saved-tensor hooks, unique
storages) are printed beside it.

On Linux CPUs the script restarts itself with glibc's malloc told to keep freed memory
(``MALLOC_MMAP_MAX_=0``, a high ``MALLOC_TRIM_THRESHOLD_``; ``--default-malloc`` turns this off).
By default glibc returns every large freed block to the system and page-faults it back on the
next allocation: on this project's 2-core machine that was a third of an R-50 forward pass, in
system time that varied by several percent between two runs of the same network.
"""

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

import torch

from ddw_lab.benchmark import ARCHS, BenchmarkOptions, write_benchmark
from ddw_lab.benchmark.classification import GROUPS
from ddw_lab.benchmark.classification import SETTINGS as CLASSIFICATION
from ddw_lab.benchmark.profile import format_operator_excess, operator_excess
from ddw_lab.process import STEADY_MALLOC, steady_malloc_active


def _add_settings_arguments(parser) -> None:
    """What is timed besides the detector: classification settings, kernels, light mode."""
    parser.add_argument(
        "--classification",
        nargs="*",
        default=[],
        choices=[*GROUPS, *CLASSIFICATION],
        metavar="SETTING",
        help="also classification settings: 'cpu' (those make bench runs), 'gpu' (the batch sizes "
        "GPU users pretrain with), or some of: " + "; ".join(CLASSIFICATION),
    )
    parser.add_argument(
        "--kernels",
        nargs="*",
        default=[],
        choices=["eager", "triton"],
        help="also time DDW with these aggregation kernels (MODEL.DDW.AGGREGATION_KERNEL) beside "
        "the default 'auto'; 'triton' needs CUDA",
    )
    parser.add_argument(
        "--light",
        action="store_true",
        help="the detector's timings, memory and floors only (no FLOP or operator counts)",
    )


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="R-50", choices=sorted(ARCHS), help="the backbone")
    parser.add_argument("--batch-size", type=int, default=2, help="images per step")
    parser.add_argument(
        "--image-size", type=int, default=512, help="shorter side (the longer is 4/3 of it)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument(
        "--weights",
        default="",
        help="optional DDW checkpoint (e.g. a trained model) for the skipping figures",
    )
    parser.add_argument("--json", default="", help="write the results here")
    parser.add_argument(
        "--markdown", default="", help="write a Markdown report here (BENCHMARKS.md)"
    )
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="on CPU, time with glibc's default malloc settings",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time static and DDW with torch.compile'd backbones (the first rounds compile)",
    )
    parser.add_argument(
        "--compile-backend", default="inductor", help="torch.compile backend for --compile"
    )
    parser.add_argument(
        "--amp", action="store_true", help="autocast: float16 on CUDA, bfloat16 on CPU"
    )
    _add_settings_arguments(parser)
    parser.add_argument(
        "--profile",
        choices=list(CLASSIFICATION),
        metavar="SETTING",
        help="instead of timing: profile one classification setting's training step on the CPU "
        "and print the operators whose self time DDW grows most",
    )
    parser.add_argument(
        "opts",
        nargs=argparse.REMAINDER,
        metavar="KEY VALUE",
        help="MODEL.DEVICE cpu|cuda (default: cuda when available); the rest of the models' "
        "config is the benchmark's",
    )
    return parser


def device_of(parser, args) -> str:
    """``MODEL.DEVICE`` of the trailing overrides, the one key the benchmark takes there."""
    pairs = dict(zip(args.opts[0::2], args.opts[1::2]))
    if len(args.opts) % 2 or set(pairs) - {"MODEL.DEVICE"}:
        parser.error(f"the only override the benchmark takes is MODEL.DEVICE, got {args.opts}")
    return pairs.get("MODEL.DEVICE", "cuda" if torch.cuda.is_available() else "cpu")


def options_of(args) -> BenchmarkOptions:
    values = {f.name: getattr(args, f.name) for f in fields(BenchmarkOptions) if f.name != "device"}
    values["device"] = args.device
    chosen = [name for item in args.classification for name in GROUPS.get(item, (item,))]
    values["classification"] = tuple(dict.fromkeys(chosen))
    values["kernels"] = tuple(args.kernels)
    values["compile_backend"] = args.compile_backend if args.compile else ""
    return BenchmarkOptions(**values)


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    args.device = device_of(parser, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.profile:
        result = operator_excess(args.profile, rounds=args.repeats, warmup=args.warmup)
        print(format_operator_excess(result))
        return
    command = "python scripts/benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_benchmark(options_of(args), args.json, args.markdown, command)


def wants_steady_malloc(args) -> bool:
    return args.device == "cpu" and not args.default_malloc and sys.platform.startswith("linux")


if __name__ == "__main__":
    if wants_steady_malloc(parse_args()) and not steady_malloc_active():
        script = str(Path(__file__).resolve())
        os.execve(
            sys.executable, [sys.executable, script, *sys.argv[1:]], {**os.environ, **STEADY_MALLOC}
        )
    main()
