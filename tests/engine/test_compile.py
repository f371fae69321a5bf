"""``MODEL.COMPILE``: both trainers compile the backbone in place (checkpoint keys unchanged),
off by default; a bad target is named."""

import math

import pytest
import torch

from ddw_detectron.config import load_config
from ddw_detectron.engine import DDWTrainer, compile_from_config
from tests.helpers import ROOT, TINY_DETECTION

DEMO = ROOT / "configs" / "Demo" / "faster_rcnn_DDW_R_18_FPN_shapes.yaml"
COMPILED = ["MODEL.COMPILE.ENABLED", "True", "MODEL.COMPILE.BACKEND", "aot_eager"]


def compiled(module) -> bool:
    return getattr(module, "_compiled_call_impl", None) is not None


def test_off_by_default_and_a_bad_target_is_named():
    cfg = load_config(str(DEMO))
    assert not compiled(DDWTrainer.build_model(cfg).backbone)
    cfg = load_config(str(DEMO), [*COMPILED, "MODEL.COMPILE.TARGET", "heads"])
    with pytest.raises(ValueError, match="MODEL.COMPILE.TARGET = 'heads' is invalid"):
        compile_from_config(cfg, torch.nn.Module())


def test_detector_trains_with_a_compiled_backbone_and_keeps_its_keys(cache, tmp_path):
    opts = [*TINY_DETECTION, *COMPILED, "SOLVER.MAX_ITER", "2", "OUTPUT_DIR", str(tmp_path)]
    cfg = load_config(str(DEMO), opts)
    torch._dynamo.reset()
    trainer = DDWTrainer(cfg)
    assert compiled(trainer.model.backbone) and not compiled(trainer.model)
    trainer.train()
    losses = trainer.storage.history("total_loss").values()
    assert losses and all(math.isfinite(v) for v, _ in losses)
    saved = torch.load(tmp_path / "model_final.pth", weights_only=True)["model"]
    eager = DDWTrainer.build_model(load_config(str(DEMO)))
    assert sorted(saved) == sorted(eager.state_dict())


def test_pretrainer_compiles_the_backbone(tmp_path):
    from ddw_detectron.classification import Pretrainer, add_classification_config
    from tests.helpers import FOLDER_PRETRAINING, make_image_folder

    data = make_image_folder(tmp_path / "data")
    opts = ["CLS.DATA_ROOT", str(data), *FOLDER_PRETRAINING, "CLS.EPOCHS", "1"]
    opts += ["OUTPUT_DIR", str(tmp_path / "out"), *COMPILED]
    config = ROOT / "configs" / "ImageNet" / "DDW_R_18.yaml"
    torch._dynamo.reset()
    trainer = Pretrainer(load_config(str(config), opts, extra=[add_classification_config]))
    assert compiled(trainer.model.backbone)
    result = trainer.train()
    assert math.isfinite(result["train_loss"]) and 0.0 <= result["top1"] <= 100.0
