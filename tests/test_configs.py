"""Every shipped config builds and trains one step on a tiny COCO-layout dataset made in a
temporary DETECTRON2_DATASETS (detection), or builds its classifier (ImageNet)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, tiny_coco

pytestmark = pytest.mark.long(40)

# Classification (pretraining) configs: configs/ImageNet/, configs/Digits/, configs/Mixed/ and
# the demo's configs/Demo/pretrain_*.
IMAGENET = sorted(
    str(p.relative_to(ROOT))
    for p in [
        *(ROOT / "configs" / "ImageNet").glob("*.yaml"),
        *(ROOT / "configs" / "Demo").glob("pretrain_*.yaml"),
        *(ROOT / "configs" / "Digits").glob("*.yaml"),
        *(ROOT / "configs" / "Mixed").glob("*.yaml"),
    ]
    if not p.name.startswith("Base")
)
DETECTION = sorted(
    str(p.relative_to(ROOT))
    for p in (ROOT / "configs").rglob("*.yaml")
    if str(p.relative_to(ROOT)) not in IMAGENET and "ImageNet" not in p.parts
)

STEP = r"""
import sys, torch
import ddw_detectron
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from ddw_detectron.engine import DDWTrainer
for path in sys.argv[1:]:
    cfg = get_cfg(); ddw_detectron.add_ddw_config(cfg); cfg.merge_from_file(path)
    cfg.MODEL.DEVICE = "cpu"
    if cfg.MODEL.MOBILENETV2.NORM == "SyncBN":
        cfg.MODEL.MOBILENETV2.NORM = "BN"  # SyncBN needs a process group
    cfg.DATASETS.TRAIN = ("coco_2017_train",)
    cfg.SOLVER.IMS_PER_BATCH = 1
    cfg.INPUT.MIN_SIZE_TRAIN = (96,)
    cfg.INPUT.MAX_SIZE_TRAIN = 128
    cfg.DATALOADER.NUM_WORKERS = 0
    torch.manual_seed(0)
    model = build_model(cfg)
    data = next(iter(DDWTrainer.build_train_loader(cfg)))
    with EventStorage():
        losses = model(data)
    loss = sum(losses.values())
    assert torch.isfinite(loss), (path, losses)
    loss.backward()
    print("ok", path, sorted(losses), flush=True)
"""


@pytest.mark.parametrize(
    "chunk", [DETECTION[i::4] for i in range(4)], ids=[f"part{i}" for i in range(4)]
)
def test_detection_configs_train_one_step(tmp_path, chunk):
    tiny_coco(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", STEP, *chunk],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DETECTRON2_DATASETS": str(tmp_path)},
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.count("ok ") == len(chunk)


@pytest.mark.parametrize("path", IMAGENET)
def test_imagenet_configs_build_their_classifier(path):
    import torch
    from detectron2.config import get_cfg

    import ddw_detectron
    from ddw_detectron.classification import add_classification_config, build_classifier

    cfg = get_cfg()
    ddw_detectron.add_ddw_config(cfg)
    add_classification_config(cfg)
    cfg.merge_from_file(str(ROOT / path))
    cfg.CLS.NUM_CLASSES = 10
    model = build_classifier(cfg).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64) * 255).shape == (1, 10)
    dynamic = "DDW_" in Path(path).name
    assert any(".routers." in k for k in model.state_dict()) == dynamic


def test_configs_were_found():
    assert len(DETECTION) >= 20 and len(IMAGENET) == 20
