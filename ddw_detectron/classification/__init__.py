"""Pretraining DDW backbones on ImageNet-style classification data: the ``CLS.*`` keys, the data,
the optimizer and the trainer. The classifier itself is :mod:`ddw_detectron.modeling.classifier`."""

from ..modeling.classifier import DDWClassifier, build_classifier
from .config import add_classification_config
from .evaluation import topk_correct
from .optim import parameter_groups
from .trainer import Pretrainer

__all__ = [
    "DDWClassifier",
    "Pretrainer",
    "add_classification_config",
    "build_classifier",
    "parameter_groups",
    "topk_correct",
]
