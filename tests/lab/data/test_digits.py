"""A real small dataset nobody here made: scikit-learn's handwritten digits as an ImageFolder
(``ddw_lab.data.digits``). A DDW R-18 on 32x32 inputs reaches >= 90% validation top-1 in
a few CPU minutes with ``configs/Digits/pretrain_DDW_R_18_digits.yaml``."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from ddw_lab.data.digits import write_digits
from tests.helpers import ROOT


def test_digits_are_written_as_an_image_folder(tmp_path):
    root = write_digits(tmp_path / "digits")
    train = sorted(p.name for p in (root / "train").iterdir())
    assert train == [str(d) for d in range(10)]
    counts = [len(list((root / split).glob("*/*.png"))) for split in ("train", "val")]
    assert counts == [1797 - 359, 359]
    image = Image.open(next((root / "val" / "3").iterdir()))
    assert image.size == (32, 32) and image.mode == "RGB"


@pytest.mark.slow
def test_ddw_r18_learns_digits(tmp_path):
    data = write_digits(tmp_path / "digits")
    output = tmp_path / "out"
    command = [
        sys.executable,
        str(ROOT / "scripts" / "pretrain_imagenet.py"),
        "--config-file",
        str(ROOT / "configs" / "Digits" / "pretrain_DDW_R_18_digits.yaml"),
        "CLS.DATA_ROOT",
        str(data),
        "OUTPUT_DIR",
        str(output),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    log = [json.loads(line) for line in (output / "log.jsonl").read_text().splitlines()]
    print("digits, DDW R-18, top-1 per epoch:", [round(e["top1"], 1) for e in log])
    assert log[-1]["top1"] >= 90.0
