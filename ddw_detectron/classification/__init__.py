"""Pretraining DDW backbones on ImageNet-style classification data."""

from .engine import Pretrainer, add_classification_config, parameter_groups, topk_correct
from .model import DDWClassifier, build_classifier

__all__ = [
    "DDWClassifier",
    "Pretrainer",
    "add_classification_config",
    "build_classifier",
    "parameter_groups",
    "topk_correct",
]
