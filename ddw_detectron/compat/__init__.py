"""Detectron2 installation facts other code of ours relies on."""

import importlib


def has_compiled_ops() -> bool:
    """True when ``detectron2._C`` is a compiled extension, False for our Python fallback."""
    module = importlib.import_module("detectron2._C")
    return not getattr(module, "IS_FALLBACK", False)


def build_coco_evaluator(dataset_name: str, output_dir=None, **kwargs):
    """A ``COCOEvaluator`` that uses the fast C++ evaluator only when the kernels are compiled."""
    from detectron2.evaluation import COCOEvaluator

    kwargs.setdefault("use_fast_impl", has_compiled_ops())
    return COCOEvaluator(dataset_name, output_dir=output_dir, **kwargs)
