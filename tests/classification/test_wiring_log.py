"""The pretraining wiring log's router gradient norms under a loss scaler (AMP)."""

import json

import pytest
import torch

from ddw_detectron.classification import Pretrainer, add_classification_config
from ddw_detectron.config import load_config
from tests.helpers import FOLDER_PRETRAINING, ROOT, make_image_folder

pytestmark = pytest.mark.long(20)


def first_step_norms(data, output, scaler=None):
    opts = ["CLS.DATA_ROOT", str(data), *FOLDER_PRETRAINING, "CLS.SEED", "0"]
    opts += ["MODEL.DDW.LOG_PERIOD", "1", "OUTPUT_DIR", str(output)]
    config = str(ROOT / "configs" / "ImageNet" / "DDW_R_18.yaml")
    trainer = Pretrainer(load_config(config, opts, extra=[add_classification_config]))
    if scaler is not None:  # what CLS.AMP gives on a GPU; a CPU scaler runs here
        trainer.scaler = scaler
    images, targets, _ = next(iter(trainer.train_loader))
    trainer._train_step(images, targets, 0)
    line = json.loads((output / "wiring.jsonl").read_text().splitlines()[0])
    return {k: v for k, v in line.items() if k.endswith("router_grad_norm")}


def test_router_gradient_norms_are_logged_unscaled_under_a_loss_scaler(tmp_path):
    data = make_image_folder(tmp_path / "data")
    plain = first_step_norms(data, tmp_path / "plain")
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    scaled = first_step_norms(data, tmp_path / "scaled", scaler)
    assert scaler.get_scale() == 2.0**12  # no overflow: the step was taken at this scale
    assert set(plain) == set(scaled) and len(plain) == 4
    for key, value in plain.items():
        assert value > 0
        # bfloat16 autocast changes the gradient a little; a scaled one would be 4096 times off
        assert 0.5 < scaled[key] / value < 2.0, (key, scaled[key], value)
