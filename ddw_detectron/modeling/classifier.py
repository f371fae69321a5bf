"""The classification model for pretraining: the DDW bottom-up backbone + pooling + linear.

``DDWClassifier.backbone`` is built by the same registered builder and the same ``MODEL.*``
keys as the detection backbone, so its parameter names are the detection backbone's by
construction (``backbone.res2.0.conv1.weight`` here, ``backbone.bottom_up.res2.0.conv1.weight``
under FPN). Inputs are normalised inside the model with ``MODEL.PIXEL_MEAN/STD`` in the channel
order of ``INPUT.FORMAT``, exactly as Detectron2's detectors do, so the same config values carry
over to detection.
"""

import torch
from torch import Tensor, nn

from .family import family_of

__all__ = ["DDWClassifier", "build_classifier"]


class DDWClassifier(nn.Module):
    """``[N, 3, H, W]`` images (0-255, ``INPUT.FORMAT`` order) to ``[N, num_classes]`` logits."""

    def __init__(self, backbone: nn.Module, feature: str, num_classes: int, pixel_mean, pixel_std):
        super().__init__()
        self.backbone = backbone
        self.feature = feature
        channels = backbone.output_shape()[feature].channels
        self.head = nn.Linear(channels, num_classes)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)
        self.register_buffer(
            "pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(1, -1, 1, 1), False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(1, -1, 1, 1), False
        )

    def forward(self, images: Tensor) -> Tensor:
        x = (images - self.pixel_mean) / self.pixel_std
        features = self.backbone(x)[self.feature]
        return self.head(features.mean(dim=(2, 3)))


def build_classifier(cfg) -> DDWClassifier:
    """The DDW backbone of ``cfg`` (family from ``MODEL.BACKBONE.NAME``) with a classifier head of
    ``CLS.NUM_CLASSES`` outputs on its last stage."""
    family = family_of(cfg)
    backbone = family.build_bottom_up(cfg, out_features=[family.last_feature])
    return DDWClassifier(
        backbone,
        family.last_feature,
        cfg.CLS.NUM_CLASSES,
        cfg.MODEL.PIXEL_MEAN,
        cfg.MODEL.PIXEL_STD,
    )
