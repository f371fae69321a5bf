"""A light mask head for Mask R-CNN, registered in Detectron2's ROI_MASK_HEAD_REGISTRY."""

from typing import List

import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import Conv2d, ConvTranspose2d, ShapeSpec, get_norm
from detectron2.modeling.roi_heads import ROI_MASK_HEAD_REGISTRY, BaseMaskRCNNHead
from torch import nn


@ROI_MASK_HEAD_REGISTRY.register()
class LightMaskHead(BaseMaskRCNNHead):
    """Depthwise-separable convolutions in place of the standard head's full 3x3 convolutions:
    ``[R, C, 14, 14]`` RoI features to ``[R, num_classes, 28, 28]`` mask logits."""

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec,
        *,
        num_classes: int,
        conv_dims: List[int],
        conv_norm="",
        **kwargs,
    ):
        super().__init__(**kwargs)
        blocks = []
        channels = input_shape.channels
        for dim in conv_dims:
            blocks += [
                Conv2d(
                    channels,
                    channels,
                    3,
                    padding=1,
                    groups=channels,
                    bias=not conv_norm,
                    norm=get_norm(conv_norm, channels),
                    activation=F.relu,
                ),
                Conv2d(channels, dim, 1, activation=F.relu),
            ]
            channels = dim
        self.convs = nn.Sequential(*blocks)
        self.deconv = ConvTranspose2d(channels, channels, kernel_size=2, stride=2)
        self.predictor = Conv2d(channels, num_classes, kernel_size=1)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.zeros_(self.predictor.bias)

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        ret.update(
            input_shape=input_shape,
            num_classes=1
            if cfg.MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK
            else cfg.MODEL.ROI_HEADS.NUM_CLASSES,
            conv_dims=[cfg.MODEL.ROI_MASK_HEAD.CONV_DIM] * cfg.MODEL.ROI_MASK_HEAD.NUM_CONV,
            conv_norm=cfg.MODEL.ROI_MASK_HEAD.NORM,
        )
        return ret

    def layers(self, x):
        return self.predictor(F.relu(self.deconv(self.convs(x))))
