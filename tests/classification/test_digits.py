"""A real small dataset nobody here made: scikit-learn's handwritten digits as an ImageFolder.
A DDW R-18 on 32x32 inputs reaches >= 90% validation top-1 in a few CPU minutes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def write_digits(root: Path, val_share=0.2, seed=0) -> Path:
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.images))
    n_val = int(len(order) * val_share)
    for rank, index in enumerate(order):
        split = "val" if rank < n_val else "train"
        folder = root / split / str(digits.target[index])
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (digits.images[index] * (255.0 / 16.0)).astype(np.uint8)
        Image.fromarray(pixels).resize((32, 32), Image.BILINEAR).convert("RGB").save(
            folder / f"{index:04d}.png"
        )
    return root


@pytest.mark.slow
def test_ddw_r18_learns_digits(tmp_path):
    data = write_digits(tmp_path / "digits")
    output = tmp_path / "out"
    command = [
        sys.executable,
        str(ROOT / "scripts" / "pretrain_imagenet.py"),
        "--config-file",
        str(ROOT / "configs" / "ImageNet" / "DDW_R_18.yaml"),
        "CLS.DATA_ROOT",
        str(data),
        "CLS.NUM_CLASSES",
        "10",
        "CLS.EPOCHS",
        "12",
        "CLS.BATCH_SIZE",
        "64",
        "CLS.BASE_LR",
        "0.2",
        "CLS.WARMUP_EPOCHS",
        "1",
        "CLS.INPUT_SIZE",
        "32",
        "CLS.RESIZE_SIZE",
        "32",
        "CLS.CROP_SCALE_MIN",
        "0.6",
        "CLS.HFLIP",
        "False",
        "CLS.NUM_WORKERS",
        "0",
        "OUTPUT_DIR",
        str(output),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    log = [json.loads(line) for line in (output / "log.jsonl").read_text().splitlines()]
    print("digits, DDW R-18, top-1 per epoch:", [round(e["top1"], 1) for e in log])
    assert log[-1]["top1"] >= 90.0
