"""Deployment: the DDW detector as TorchScript (Detectron2's ``TracingAdapter``) and the DDW
backbone as ONNX.

In an exported graph every edge of every DAG stage is computed with plain tensor operations; a
dropped edge simply has weight 0 (the threshold is part of the graph), so exported outputs equal
eager outputs for any wiring. Unused-node skipping and the skipping of dropped edges are
eager-mode optimisations and are not in the graph.
"""

import copy
from typing import Dict, List, Sequence

import torch
from torch import nn

__all__ = ["MIN_OPSET", "check_exportable", "trace_detector", "export_backbone_onnx"]

MIN_OPSET = 13  # per-sample weights need ONNX's broadcasting Mul and axes-as-input ReduceMean


def check_exportable(model: nn.Module) -> None:
    if model.training:
        raise ValueError(
            "export needs a model in eval mode (call model.eval()): training-mode BatchNorm and the "
            "straight-through gate are not part of an inference graph"
        )


def _detector_inference(model, inputs):
    instances = model.inference(inputs, do_postprocess=False)[0]
    return [{"instances": instances}]


def trace_detector(model: nn.Module, inputs: List[Dict]):
    """TorchScript-trace a Detectron2 meta-architecture with Detectron2's ``TracingAdapter``.

    Returns ``(traced, adapter)``; run ``adapter.outputs_schema(traced(image))`` to get the
    model's outputs back. ``inputs`` are Detectron2 inputs (``[{"image": Tensor[3, H, W]}]``).
    """
    check_exportable(model)
    model = copy.deepcopy(model)
    from detectron2.export import TracingAdapter

    inference = _detector_inference if hasattr(model, "roi_heads") else None
    adapter = TracingAdapter(model, inputs, inference)
    with torch.no_grad():
        traced = torch.jit.trace(adapter, adapter.flattened_inputs, check_trace=False)
    return traced, adapter


class _TupleOutputs(nn.Module):
    def __init__(self, backbone: nn.Module, names: Sequence[str]):
        super().__init__()
        self.backbone = backbone
        self.names = list(names)

    def forward(self, image):
        features = self.backbone(image)
        return tuple(features[name] for name in self.names)


def export_backbone_onnx(backbone: nn.Module, example: torch.Tensor, path: str, opset: int = 17) -> List[str]:
    """Export a (DDW) backbone to ONNX; returns the output names (its feature names, in order).
    The batch, height and width axes are dynamic."""
    check_exportable(backbone)
    if opset < MIN_OPSET:
        raise ValueError(f"export_backbone_onnx: opset {opset} is not supported; DDW backbones need opset >= {MIN_OPSET}")
    # The exporter changes the module it is given (seen with torch 2.14: eager outputs differ
    # after an export), so it gets a copy.
    backbone = copy.deepcopy(backbone)
    names = list(backbone.output_shape())
    axes = {"image": {0: "batch", 2: "height", 3: "width"}}
    axes.update({name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} for name in names})
    with torch.no_grad():
        torch.onnx.export(
            _TupleOutputs(backbone, names), (example,), path, input_names=["image"], output_names=names,
            dynamic_axes=axes, opset_version=opset, dynamo=False,
        )
    return names
