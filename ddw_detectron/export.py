"""Deployment: the DDW detector as TorchScript (Detectron2's ``TracingAdapter`` for tracing,
Detectron2's ``scripting_with_instances`` for scripting) and the DDW backbone as ONNX.

Traced and ONNX graphs are data-independent: every edge of every DAG stage is computed with
plain tensor operations and a dropped edge simply has weight 0 (the threshold is part of the
graph), so their outputs equal eager outputs for any wiring. Scripted models keep the per-image
control flow instead (:class:`~ddw_detectron.layers.ScriptableDAGStage`): an edge dropped for
the whole batch is not computed, as in eager mode on the CPU. Serving a node with no kept
incoming edge from a cache (eager batch-1 skipping) is eager-only; the scripted graph computes
it on zeros.
"""

import copy
from typing import Dict, List, Mapping, Optional, Sequence

import torch
from torch import nn

from .layers import make_scriptable
from .modeling.dynamic import DDWBackbone

__all__ = [
    "MIN_OPSET",
    "check_exportable",
    "trace_detector",
    "script_detector",
    "script_backbone",
    "export_backbone_onnx",
]

MIN_OPSET = 13  # per-sample weights need ONNX's broadcasting Mul and axes-as-input ReduceMean


def check_exportable(model: nn.Module) -> None:
    if model.training:
        raise ValueError(
            "export needs a model in eval mode (call model.eval()): training-mode BatchNorm and "
            "the "
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


def _scripting_fields() -> Dict[str, type]:
    from detectron2.structures import Boxes

    return {
        "proposal_boxes": Boxes,
        "objectness_logits": torch.Tensor,
        "pred_boxes": Boxes,
        "scores": torch.Tensor,
        "pred_classes": torch.Tensor,
        "pred_masks": torch.Tensor,
    }


def _check_scriptable(model: nn.Module) -> None:
    check_exportable(model)
    from detectron2.modeling.backbone.regnet import RegNet

    if any(isinstance(module, RegNet) for module in model.modules()):
        raise NotImplementedError(
            "scripting a RegNet backbone is not supported: Detectron2 v0.6's RegNet blocks are not "
            "scriptable (ResBottleneckBlock tests `if self.proj`); use trace_detector or "
            "export_backbone_onnx for RegNet"
        )


def script_detector(model: nn.Module, fields: Optional[Mapping[str, type]] = None):
    """TorchScript-script a Detectron2 meta-architecture with a DDW backbone, through Detectron2's
    ``scripting_with_instances``, on a copy of ``model`` whose DAG stages are replaced by their
    :class:`~ddw_detectron.layers.ScriptableDAGStage`.

    ``fields`` are the ``Instances`` fields and types the model uses; by default those of
    Faster/Mask R-CNN and RetinaNet (proposals, boxes, scores, classes, masks). Run the result
    as Detectron2's scripted models:
    ``scripted.inference([{"image": image}], do_postprocess=False)``.
    """
    _check_scriptable(model)
    from detectron2.export import scripting_with_instances

    scriptable = _scriptable_copy(model)
    return scripting_with_instances(
        scriptable, dict(fields) if fields is not None else _scripting_fields()
    )


def script_backbone(backbone: nn.Module) -> torch.jit.ScriptModule:
    """``torch.jit.script`` of a (DDW) backbone, on a copy whose DAG stages are replaced by
    their :class:`~ddw_detectron.layers.ScriptableDAGStage`."""
    _check_scriptable(backbone)
    # Importing it makes Detectron2's ResNet and FPN scriptable.
    import detectron2.export.torchscript_patch  # noqa: F401

    return torch.jit.script(_scriptable_copy(backbone))


def _scriptable_copy(model: nn.Module) -> nn.Module:
    copied = copy.deepcopy(model)
    for module in copied.modules():
        if isinstance(module, DDWBackbone):
            module.stop_logging_wiring()
    return make_scriptable(copied)


class _TupleOutputs(nn.Module):
    def __init__(self, backbone: nn.Module, names: Sequence[str]):
        super().__init__()
        self.backbone = backbone
        self.names = list(names)

    def forward(self, image):
        features = self.backbone(image)
        return tuple(features[name] for name in self.names)


def export_backbone_onnx(
    backbone: nn.Module, example: torch.Tensor, path: str, opset: int = 17
) -> List[str]:
    """Export a (DDW) backbone to ONNX; returns the output names (its feature names, in order).
    The batch, height and width axes are dynamic."""
    check_exportable(backbone)
    if opset < MIN_OPSET:
        raise ValueError(
            f"export_backbone_onnx: opset {opset} is not supported; DDW backbones need opset >= "
            f"{MIN_OPSET}"
        )
    # The exporter changes the module it is given (seen with torch 2.14: eager outputs differ
    # after an export), so it gets a copy.
    backbone = copy.deepcopy(backbone)
    names = list(backbone.output_shape())
    axes = {"image": {0: "batch", 2: "height", 3: "width"}}
    axes.update({name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} for name in names})
    with torch.no_grad():
        torch.onnx.export(
            _TupleOutputs(backbone, names),
            (example,),
            path,
            input_names=["image"],
            output_names=names,
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    return names
