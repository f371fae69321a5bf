"""FLOP counts of DDW models: Detectron2's own ``FlopCountAnalysis`` (what its
``tools/analyze_model.py`` runs) counts the aggregation with no unsupported-operator warning."""

import logging

import torch
from detectron2.modeling import build_model
from detectron2.utils.analysis import FlopCountAnalysis

from ddw_detectron.config import load_config
from ddw_detectron.layers import DAGStage
from tests.helpers import CONFIGS


def detector(*opts):
    config = CONFIGS / "Demo" / "faster_rcnn_DDW_R_18_FPN_shapes.yaml"
    return build_model(load_config(str(config), ["MODEL.RESNETS.DEPTH", "34", *opts])).eval()


def test_detectron2s_flop_count_counts_the_aggregation_without_warning(caplog):
    torch.manual_seed(0)
    inputs = [{"image": torch.rand(3, 96, 96) * 255}]
    counts, further = {}, []
    for name, opts in (("ddw", []), ("static", ["MODEL.DDW.DYNAMIC_STAGES", "[]"])):
        model = detector(*opts)
        for stage in (m for m in model.modules() if isinstance(m, DAGStage)):
            n = stage.num_nodes  # one addcmul_ per edge after each node's first
            stage.register_forward_hook(
                lambda m, a, out, n=n: further.append((n - 1) * (n - 2) // 2 * out.numel())
            )
        with caplog.at_level(logging.WARNING):
            counts[name] = FlopCountAnalysis(model, inputs).by_operator()
        assert "addcmul" not in caplog.text and "aten::mean" not in caplog.text, caplog.text
        caplog.clear()
    assert "addcmul_" not in counts["static"]
    assert counts["ddw"]["addcmul_"] == sum(further) > 0
