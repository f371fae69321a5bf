"""Stand-in for ``detectron2._C`` when Detectron2's C++/CUDA kernels were not compiled.

``scripts/install_detectron2.py`` installs this file as ``detectron2/_C.py`` into a Detectron2
installed from Python sources only. Detectron2 imports ``_C`` at module level in a few places
(``layers/rotated_boxes.py``, ``layers/deform_conv.py``, ``layers/roi_align_rotated.py``,
``evaluation/fast_eval_api.py``), so without it ``import detectron2.modeling`` fails. Everything
Faster/Mask R-CNN and RetinaNet need on axis-aligned boxes goes through torchvision ops and works;
each op below needs a compiled kernel and raises an error that names it.

It also restores the numpy aliases ``np.bool``, ``np.int``, ``np.float``, ``np.object`` and
``np.str`` (plain aliases of the Python builtins, removed in numpy 1.24) that Detectron2 v0.6 still
uses (``PolygonMasks``, the semantic-segmentation and VOC evaluators); this environment pins
numpy 1.26. Every ``detectron2.layers`` / ``detectron2.structures`` import loads this module.

And it registers ``detectron2.export`` without the Caffe2 exporter when ``caffe2`` is absent
(PyTorch 2 does not ship it): Detectron2 v0.6's ``detectron2/export/__init__.py`` imports that
exporter first, which made ``TracingAdapter`` and ``detectron2.utils.analysis`` unimportable.

This module must not import ``ddw_detectron``: it is loaded by Detectron2 itself.
"""

import importlib
import importlib.util
import os
import sys
import types

import numpy as np
import torch

for _alias, _builtin in (
    ("bool", bool),
    ("int", int),
    ("float", float),
    ("object", object),
    ("str", str),
):
    if _alias not in np.__dict__:
        setattr(np, _alias, _builtin)

IS_FALLBACK = True

_OPS = {
    "box_iou_rotated": "rotated box IoU (RotatedBoxes pairwise_iou)",
    "nms_rotated": "rotated non-maximum suppression (batched_nms_rotated)",
    "roi_align_rotated_forward": "ROIAlignRotated",
    "roi_align_rotated_backward": "ROIAlignRotated",
    "deform_conv_forward": "deformable convolution (DeformConv)",
    "deform_conv_backward_input": "deformable convolution (DeformConv)",
    "deform_conv_backward_filter": "deformable convolution (DeformConv)",
    "modulated_deform_conv_forward": "modulated deformable convolution (ModulatedDeformConv)",
    "modulated_deform_conv_backward": "modulated deformable convolution (ModulatedDeformConv)",
    "InstanceAnnotation": "the fast COCO evaluator (COCOeval_opt; use use_fast_impl=False)",
    "ImageEvaluation": "the fast COCO evaluator (COCOeval_opt; use use_fast_impl=False)",
    "COCOevalEvaluateImages": "the fast COCO evaluator (COCOeval_opt; use use_fast_impl=False)",
    "COCOevalAccumulate": "the fast COCO evaluator (COCOeval_opt; use use_fast_impl=False)",
}


class MissingCompiledOpError(NotImplementedError):
    """Raised when an op needs Detectron2's compiled kernels, which this installation lacks."""


def _message(name: str) -> str:
    return (
        f"detectron2._C.{name} ({_OPS.get(name, 'a compiled Detectron2 op')}) is not available: "
        "this Detectron2 was installed from Python sources without its C++/CUDA kernels. "
        "A full Detectron2 build (compiled from source, "
        "https://detectron2.readthedocs.io/en/latest/tutorials/install.html) provides it."
    )


def _missing(name: str):
    def op(*args, **kwargs):
        raise MissingCompiledOpError(_message(name))

    op.__name__ = name
    op.__qualname__ = name
    return op


for _name in _OPS:
    globals()[_name] = _missing(_name)


def get_compiler_version() -> str:
    return "not compiled (Python-only Detectron2)"


def get_cuda_version() -> str:
    return "not compiled"


def has_cuda() -> bool:
    return False


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return _missing(name)


def _register_torch_ops() -> None:
    # Detectron2 calls torch.ops.detectron2.nms_rotated; give it a definition that raises the same
    # clear error instead of "No such operator".
    try:
        torch.ops.detectron2.nms_rotated
        return
    except (AttributeError, RuntimeError):
        pass
    library = torch.library.Library("detectron2", "DEF")
    library.define("nms_rotated(Tensor boxes, Tensor scores, float iou_threshold) -> Tensor")

    def nms_rotated(boxes, scores, iou_threshold):
        raise MissingCompiledOpError(_message("nms_rotated"))

    for key in ("CPU", "CUDA", "Meta"):
        library.impl("nms_rotated", nms_rotated, key)
    globals()["_torch_library"] = library


_register_torch_ops()

_EXPORT_NAMES = {
    "TracingAdapter": "detectron2.export.flatten",
    "flatten_to_tuple": "detectron2.export.flatten",
    "scripting_with_instances": "detectron2.export.torchscript",
    "dump_torchscript_IR": "detectron2.export.torchscript",
}


def _register_export_without_caffe2() -> None:
    if "detectron2.export" in sys.modules or importlib.util.find_spec("caffe2") is not None:
        return
    package = types.ModuleType("detectron2.export")
    package.__path__ = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "export")]
    package.__package__ = "detectron2.export"

    def __getattr__(name):
        if name in _EXPORT_NAMES:
            return getattr(importlib.import_module(_EXPORT_NAMES[name]), name)
        if name.startswith("__"):
            raise AttributeError(name)
        raise ModuleNotFoundError(
            f"detectron2.export.{name} is part of Detectron2's Caffe2 exporter, which needs the "
            "'caffe2' package (not shipped with PyTorch 2); TracingAdapter and the TorchScript "
            "helpers are available"
        )

    package.__getattr__ = __getattr__
    sys.modules["detectron2.export"] = package


_register_export_without_caffe2()
