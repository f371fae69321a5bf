"""The prepared device check (``make device-check``, ``scripts/device_check.py``): what a GPU
must show, in one command that finishes in minutes.

1. ``bench``: the benchmark under AMP at the settings GPU users train with, compiled backbones
   beside the eager ones and DDW also with the fused Triton aggregation: R-50 Faster R-CNN FPN,
   batch 2, shorter side 800; R-50 and RegNetX-1.6GF at batch 128 and MobileNetV2 at batch 256,
   224 px, channels_last;
2. ``bench_b8``: the detector at batch 8 (timings, memory and floors only);
3. ``kernels``: the aggregation alone, eager against Triton, at those settings' node shapes
   (fp16): the measurement that chooses the kernel ``"auto"`` takes on CUDA;
4. ``train``: AMP training iterations of the demo detector, losses finite;
5. ``pretrain``: one AMP pretraining epoch on scikit-learn's digits written as an ImageFolder;
6. ``export``: the demo detector traced with Detectron2's ``TracingAdapter`` on the device,
   the traced boxes compared with eager ones.

``bench_fp32`` (the benchmark in fp32) runs when asked for. ``dry=True`` runs every step on the
CPU at tiny sizes (fp32 in the benchmark, bfloat16 in ``kernels``, ``aot_eager`` compilation, no
AMP in training, Triton's interpreter), so that a test keeps the check from rotting. Writes
``device_check.json`` and ``device_check.md`` (a section for ``BENCHMARKS.md``) after every
step, so that a check stopped midway still leaves what it measured.
"""

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Dict, List

import torch

from ddw_detectron.model_zoo import get_config_file
from ddw_lab import jobs
from ddw_lab.benchmark import BenchmarkOptions, write_benchmark
from ddw_lab.benchmark.classification import GROUPS
from ddw_lab.benchmark.kernels import DRY_SHAPES, kernels_markdown, measure_kernels
from ddw_lab.process import run_in_child

__all__ = ["STEPS", "run_device_check"]

STEPS = ("bench", "bench_b8", "kernels", "train", "pretrain", "export")
OPTIONAL_STEPS = ("bench_fp32",)
# The classification setting of the dry run: the quickest, in the memory format of the GPU ones.
DRY_CLASSIFICATION = "the demo's R-34, 32 px, batch 8, channels_last"
DETECTION_CONFIG = "Demo/faster_rcnn_DDW_R_34_FPN_shapes.yaml"
DIGITS_CONFIG = "Digits/pretrain_DDW_R_18_digits.yaml"
# fmt: off
DRY_DETECTION = [
    "DATASETS.TRAIN", "('ddw_shapes_tiny',)", "DATASETS.TEST", "('ddw_shapes_tiny',)",
    "MODEL.RESNETS.DEPTH", "18", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.WARMUP_ITERS", "1",
    "SOLVER.STEPS", "()",
]
# fmt: on


def _device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"


def _bench(output: Path, device: str, dry: bool, step: str) -> Dict:
    # On a CPU, bfloat16 autocast makes the dry run's steps ten times slower: fp32 there.
    amp, batch = step != "bench_fp32" and not dry, 8 if step == "bench_b8" else 2
    settings = () if step == "bench_b8" else GROUPS["gpu"]
    if dry:
        size = dict(arch="R-18", image_size=64, repeats=1, warmup=1, compile_backend="aot_eager")
        settings = settings and (DRY_CLASSIFICATION,)
    else:
        size = dict(arch="R-50", image_size=800, repeats=10, warmup=3, compile_backend="inductor")
    options = BenchmarkOptions(
        device=device,
        batch_size=batch,
        amp=amp,
        classification=settings,
        kernels=("triton",),
        light=step == "bench_b8",
        **size,
    )
    json_path, markdown = output / f"{step}.json", output / f"{step}.md"
    command = f"make device-check ({step})"
    run_in_child(step, write_benchmark, options, str(json_path), str(markdown), command)
    report = json.loads(json_path.read_text())
    return {
        "ratios": report["ratios"],
        "operators": report.get("operators"),
        "markdown": markdown.name,
    }


def _kernels(output: Path, device: str, dry: bool) -> Dict:
    dtype = torch.bfloat16 if dry else torch.float16
    repeats, warmup = (1, 1) if dry else (20, 5)
    report = measure_kernels(device, dtype, repeats, warmup, DRY_SHAPES if dry else None)
    name = str(dtype).replace("torch.", "")
    (output / "kernels.md").write_text(kernels_markdown(report, name) + "\n")
    return {"shapes": report, "markdown": "kernels.md"}


def _train(output: Path, device: str, dry: bool) -> Dict:
    folder = output / "train"
    opts = DRY_DETECTION + ["SOLVER.MAX_ITER", "2"] if dry else ["SOLVER.MAX_ITER", "100"]
    amp = "False" if device == "cpu" else "True"
    opts = [
        "MODEL.DEVICE", device, "MODEL.WEIGHTS", "", "SOLVER.AMP.ENABLED", amp,
        "SOLVER.CHECKPOINT_PERIOD", "100000", *opts, "OUTPUT_DIR", str(folder),
    ]  # fmt: skip
    config = get_config_file(DETECTION_CONFIG)
    run_in_child("train", jobs.detect, config, opts, str(folder / "result.json"))
    lines = [json.loads(line) for line in (folder / "metrics.json").read_text().splitlines()]
    losses = [line["total_loss"] for line in lines if "total_loss" in line]
    if not losses or not all(math.isfinite(v) for v in losses):
        raise RuntimeError(f"training losses are not all finite: {losses}")
    iterations = max(line["iteration"] for line in lines if "total_loss" in line) + 1
    return {"iterations": iterations, "amp": amp == "True",
            "last_total_loss": losses[-1], "bbox": _final_ap(folder)}  # fmt: skip


def _final_ap(folder: Path):
    path = folder / "final_results.json"
    return json.loads(path.read_text()).get("bbox") if path.is_file() else None


def _pretrain(output: Path, device: str, dry: bool) -> Dict:
    from ddw_lab.data.digits import digits_root

    folder = output / "pretrain"
    tiny = ["CLS.BATCH_SIZE", "16", "CLS.INPUT_SIZE", "16", "CLS.RESIZE_SIZE", "16"] if dry else []
    opts = [
        "CLS.DATA_ROOT", str(digits_root()), "CLS.EPOCHS", "1", "CLS.AMP", "True", *tiny,
        "OUTPUT_DIR", str(folder),
    ]  # fmt: skip
    config = get_config_file(DIGITS_CONFIG)
    run_in_child("pretrain", jobs.pretrain, config, opts, str(folder / "result.json"))
    epoch = json.loads((folder / "log.jsonl").read_text().splitlines()[-1])
    if not math.isfinite(epoch["train_loss"]):
        raise RuntimeError(f"pretraining loss is not finite: {epoch['train_loss']}")
    return {"train_loss": epoch["train_loss"], "top1": epoch["top1"], "amp": device == "cuda"}


def _export(device: str, dry: bool) -> Dict:
    from detectron2.data import DatasetCatalog
    from detectron2.data.detection_utils import read_image

    from ddw_detectron.config import load_config
    from ddw_detectron.engine import DDWTrainer
    from ddw_detectron.export import trace_detector

    opts = (DRY_DETECTION if dry else []) + ["MODEL.DEVICE", device, "MODEL.WEIGHTS", ""]
    cfg = load_config(get_config_file(DETECTION_CONFIG), opts)
    torch.manual_seed(0)
    model = DDWTrainer.build_model(cfg).eval()
    record = DatasetCatalog.get(cfg.DATASETS.TEST[0])[0]
    image = torch.as_tensor(read_image(record["file_name"], "RGB").transpose(2, 0, 1).copy())
    inputs = [{"image": image.float().to(device)}]
    traced, adapter = trace_detector(model, inputs)
    with torch.no_grad():
        eager = model.inference(inputs, do_postprocess=False)[0]
        boxes = adapter.outputs_schema(traced(*adapter.flattened_inputs))[0]["instances"]
    difference = (boxes.pred_boxes.tensor - eager.pred_boxes.tensor).abs().max().item()
    return {"detections": len(eager), "max_box_difference": difference if len(eager) else 0.0}


def _run_step(step: str, output: Path, device: str, dry: bool) -> Dict:
    if step.startswith("bench"):
        return _bench(output, device, dry, step)
    if step == "kernels":
        return _kernels(output, device, dry)
    if step == "train":
        return _train(output, device, dry)
    if step == "pretrain":
        return _pretrain(output, device, dry)
    return _export(device, dry)


def run_device_check(output: Path, dry: bool = False, steps: List[str] = STEPS) -> Dict:
    """Run ``steps`` on CUDA (or, with ``dry``, on the CPU at tiny sizes); a failed step is
    recorded with its error and the others still run. Returns the report."""
    if not dry and not torch.cuda.is_available():
        raise RuntimeError("the device check needs CUDA; on a CPU run it with --dry")
    if dry:  # the Triton kernels in the interpreter, here and in the steps' processes
        os.environ["TRITON_INTERPRET"] = "1"
    device = "cpu" if dry else "cuda"
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    report = {"device": _device_name(device), "dry": dry, "torch": torch.__version__, "steps": {}}
    for number, step in enumerate(steps, 1):
        print(f"\n==== device check [{number}/{len(steps)}] {step}", flush=True)
        start = time.perf_counter()
        try:
            result = {"ok": True, **_run_step(step, output, device, dry)}
        except Exception as exc:  # a failed step is reported; the others still run
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        result["seconds"] = round(time.perf_counter() - start, 1)
        report["steps"][step] = result
        print(f"[{step}] {'ok' if result['ok'] else 'FAILED'} in {result['seconds']} s", flush=True)
        (output / "device_check.json").write_text(json.dumps(report, indent=2))
        (output / "device_check.md").write_text(markdown_section(report, output))
    return report


def markdown_section(report: Dict, output: Path) -> str:
    """The device check as a Markdown section: each step's outcome, then the benchmark tables."""
    kind = "dry run on the CPU (tiny sizes)" if report["dry"] else report["device"]
    lines = [f"## Device check: {kind}", "", f"torch {report['torch']}; `make device-check`.", ""]
    lines += ["| step | outcome | seconds |", "|---|---|---|"]
    for step, result in report["steps"].items():
        outcome = "ok" if result["ok"] else f"FAILED: {result['error']}"
        if result["ok"] and step == "train":
            outcome += f", {result['iterations']} iterations, last total loss "
            outcome += f"{result['last_total_loss']:.3f}"
        if result["ok"] and step == "pretrain":
            outcome += f", train loss {result['train_loss']:.3f}, top-1 {result['top1']:.1f}%"
        if result["ok"] and step == "export":
            outcome += f", {result['detections']} detections, traced - eager boxes at most "
            outcome += f"{result['max_box_difference']:.2e} px"
        lines.append(f"| {step} | {outcome} | {result['seconds']} |")
    for step in ("bench", "bench_b8", "bench_fp32"):
        result = report["steps"].get(step, {})
        if result.get("ok"):
            title, body = (
                (output / result["markdown"]).read_text().split("\n## ", 1)[-1].split("\n", 1)
            )
            lines += ["", f"### {step}: {title}", body]
    result = report["steps"].get("kernels", {})
    if result.get("ok"):
        lines += ["", "### kernels: the aggregation alone, eager and Triton", ""]
        lines.append((output / result["markdown"]).read_text())
    return "\n".join(lines) + "\n"
