"""Glue shared by the DDW backbones: stages to DAGs from ``cfg``, freezing, FPN builders."""

from typing import Callable, Mapping, Optional, Sequence, Tuple, Union

from detectron2.layers import FrozenBatchNorm2d
from detectron2.modeling.backbone import FPN, Backbone
from detectron2.modeling.backbone.fpn import LastLevelMaxPool, LastLevelP6P7
from torch import nn

from ..config import STAGE_DEFAULTS, check_ddw_config, check_dynamic_stages
from ..layers import DAGStage

__all__ = [
    "dag_stage_factory",
    "stage_replacement",
    "make_dag_stage",
    "freeze_stage",
    "build_rcnn_fpn",
    "build_retinanet_fpn",
]

Nodes = Union[Sequence[nn.Module], Mapping[str, nn.Module]]


def dag_stage_factory(
    threshold: float = STAGE_DEFAULTS["threshold"],
    gate: str = STAGE_DEFAULTS["gate"],
    router_hidden_dim: int = STAGE_DEFAULTS["router_hidden_dim"],
    memory_efficient: bool = STAGE_DEFAULTS["memory_efficient"],
    skip_unused_nodes: bool = STAGE_DEFAULTS["skip_unused_nodes"],
    init_edge_weights: Optional[Tuple[float, float]] = STAGE_DEFAULTS["init_edge_weights"],
) -> Callable[[str, Nodes, int], DAGStage]:
    """``(name, nodes, out_channels) -> DAGStage`` with these settings (the defaults are those
    of ``MODEL.DDW.*``): the ``stage_factory`` of the DDW backbone classes, for LazyConfig."""

    def make(name: str, nodes: Nodes, out_channels: int) -> DAGStage:
        stage = DAGStage(
            nodes,
            out_channels,
            threshold=threshold,
            gate=gate,
            router_hidden_dim=router_hidden_dim,
            memory_efficient=memory_efficient,
            skip_unused_nodes=skip_unused_nodes,
            init_edge_weights=None if init_edge_weights is None else tuple(init_edge_weights),
        )
        stage.wiring_name = name
        return stage

    return make


def make_dag_stage(cfg, name: str, nodes: Nodes, out_channels: int) -> DAGStage:
    """A :class:`DAGStage` named ``name`` over ``nodes``, configured by ``MODEL.DDW.*``."""
    ddw = cfg.MODEL.DDW
    return dag_stage_factory(
        threshold=ddw.THRESHOLD,
        gate=ddw.GATE,
        router_hidden_dim=ddw.ROUTER_HIDDEN_DIM,
        memory_efficient=ddw.MEMORY_EFFICIENT,
        skip_unused_nodes=ddw.SKIP_UNUSED_NODES,
        init_edge_weights=(ddw.ROUTER_INIT_CHAIN, ddw.ROUTER_INIT_OTHER)
        if ddw.ROUTER_INIT_CHAIN > 0
        else None,
    )(name, nodes, out_channels)


def stage_replacement(dynamic_stages: Sequence[str], stage_names: Sequence[str], stage_factory):
    """The checked ``dynamic_stages`` of a DDW backbone class (the error of the YAML path for an
    unknown name) and its ``stage_factory`` (``dag_stage_factory()``, the method's defaults, when
    None)."""
    check_dynamic_stages(list(dynamic_stages), stage_names)
    return list(dynamic_stages), stage_factory or dag_stage_factory()


def dynamic_stage_names(cfg, stage_names: Sequence[str]):
    """The validated ``MODEL.DDW.DYNAMIC_STAGES`` for a backbone with ``stage_names``."""
    check_ddw_config(cfg, stage_names)
    return list(cfg.MODEL.DDW.DYNAMIC_STAGES)


def freeze_stage(stage: nn.Module) -> None:
    """Freeze a stage the Detectron2 way: every node's ``freeze()`` (no gradients, BN to
    FrozenBN), and a DAG stage's routers too."""
    nodes = stage.nodes() if isinstance(stage, DAGStage) else list(stage.children())
    for node in nodes:
        if hasattr(node, "freeze"):
            node.freeze()
        else:
            for p in node.parameters():
                p.requires_grad = False
            FrozenBatchNorm2d.convert_frozen_batchnorm(node)
    if isinstance(stage, DAGStage):
        for p in stage.routers.parameters():
            p.requires_grad = False


def _fpn_in_features(cfg, bottom_up: Backbone):
    in_features = list(cfg.MODEL.FPN.IN_FEATURES)
    available = bottom_up.output_shape()
    missing = [f for f in in_features if f not in available]
    if missing:
        raise ValueError(
            f"MODEL.FPN.IN_FEATURES = {in_features} is invalid: {missing} are not outputs of "
            f"the bottom-up backbone, whose outputs are {list(available)} (set its OUT_FEATURES)"
        )
    return in_features


def build_rcnn_fpn(cfg, bottom_up: Backbone) -> FPN:
    """Detectron2's ``FPN`` with ``LastLevelMaxPool`` (P2-P6 for R-CNN) over ``bottom_up``."""
    return FPN(
        bottom_up=bottom_up,
        in_features=_fpn_in_features(cfg, bottom_up),
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )


def build_retinanet_fpn(cfg, bottom_up: Backbone) -> FPN:
    """Detectron2's ``FPN`` with ``LastLevelP6P7`` (P3-P7 for RetinaNet) over ``bottom_up``;
    P6 is computed from the last bottom-up feature, as Detectron2 does with res5."""
    in_features = _fpn_in_features(cfg, bottom_up)
    out_channels = cfg.MODEL.FPN.OUT_CHANNELS
    in_channels_p6p7 = bottom_up.output_shape()[in_features[-1]].channels
    return FPN(
        bottom_up=bottom_up,
        in_features=in_features,
        out_channels=out_channels,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelP6P7(in_channels_p6p7, out_channels, in_feature=in_features[-1]),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )
