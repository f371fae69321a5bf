"""WiringProbeRCNN: Faster R-CNN with a probe that reads the DDW wiring of each image.

A user component registered next to ddw_detectron's: a meta-architecture in Detectron2's
``META_ARCH_REGISTRY`` that consumes the backbone's wiring (``ddw_detectron.collect_wiring``,
detached) with a small head trained to tell which classes are in the image. Its loss,
``loss_wiring_probe``, trains the probe only (the wiring is detached, so the detector is
unchanged), and its accuracy, ``wiring_probe/accuracy``, measures how much the wiring knows about
image content.
"""

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode, configurable
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN
from detectron2.utils.events import get_event_storage
from torch import nn

import ddw_detectron
from ddw_detectron.layers import DAGStage
from ddw_detectron.utils.wiring_stats import upper_edges


def add_wiring_probe_config(cfg):
    cfg.MODEL.WIRING_PROBE = CfgNode()
    cfg.MODEL.WIRING_PROBE.HIDDEN_DIM = 64


@META_ARCH_REGISTRY.register()
class WiringProbeRCNN(GeneralizedRCNN):
    """GeneralizedRCNN + a probe from the concatenated edge weights of all DDW stages
    (``[B, E]``) to per-class logits (``[B, num_classes]``)."""

    @configurable
    def __init__(self, *, num_classes: int, hidden_dim: int, **kwargs):
        super().__init__(**kwargs)
        stages = [m for m in self.backbone.modules() if isinstance(m, DAGStage)]
        if not stages:
            raise ValueError(
                "WiringProbeRCNN needs a backbone with DDW stages (MODEL.DDW.DYNAMIC_STAGES)"
            )
        edges = sum(s.num_nodes * (s.num_nodes - 1) // 2 for s in stages)
        self.probe = nn.Sequential(
            nn.Linear(edges, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, num_classes)
        )
        self.num_classes = num_classes

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        ret.update(
            num_classes=cfg.MODEL.ROI_HEADS.NUM_CLASSES,
            hidden_dim=cfg.MODEL.WIRING_PROBE.HIDDEN_DIM,
        )
        return ret

    def probe_logits(self) -> torch.Tensor:
        """``[B, num_classes]`` from the wiring of the last forward."""
        wiring = ddw_detectron.collect_wiring(self.backbone)
        return self.probe(torch.cat([upper_edges(a) for a in wiring.values()], dim=1))

    def forward(self, batched_inputs):
        outputs = super().forward(batched_inputs)
        if not self.training:
            return outputs
        targets = torch.zeros(len(batched_inputs), self.num_classes, device=self.device)
        for row, sample in enumerate(batched_inputs):
            targets[row, sample["instances"].gt_classes.to(self.device)] = 1.0
        logits = self.probe_logits()
        outputs["loss_wiring_probe"] = F.binary_cross_entropy_with_logits(logits, targets)
        get_event_storage().put_scalar(
            "wiring_probe/accuracy", float(((logits > 0) == (targets > 0)).float().mean())
        )
        return outputs
