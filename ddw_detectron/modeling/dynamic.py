"""Glue shared by the DDW backbones: stages to DAGs from ``cfg``, freezing, FPN builders."""

import logging
from typing import Callable, List, Mapping, Optional, Sequence, Tuple, Union

from detectron2.layers import FrozenBatchNorm2d
from detectron2.modeling.backbone import FPN, Backbone
from detectron2.modeling.backbone.fpn import LastLevelMaxPool, LastLevelP6P7
from detectron2.utils.events import get_event_storage
from torch import nn

from ..layers import DAGStage, collect_wiring
from ..layers.aggregate import capturing_graph
from ..layers.dag_stage import STAGE_DEFAULTS
from ..utils.wiring_stats import telemetry
from .stage_config import (
    LOG_PERIOD,
    ConfigValueError,
    check_ddw_config,
    check_dynamic_stages,
)

__all__ = [
    "dag_stage_factory",
    "lazy_dynamic_kwargs",
    "stage_factory_kwargs",
    "warn_if_untrained",
    "DDWBackbone",
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
    router_mode: str = STAGE_DEFAULTS["router_mode"],
    aggregation_kernel: str = STAGE_DEFAULTS["aggregation_kernel"],
    keep_strongest_input: bool = STAGE_DEFAULTS["keep_strongest_input"],
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
            router_mode=router_mode,
            aggregation_kernel=aggregation_kernel,
            keep_strongest_input=keep_strongest_input,
        )
        stage.wiring_name = name
        return stage

    return make


def stage_factory_kwargs(cfg) -> dict:
    """The :func:`dag_stage_factory` arguments of ``MODEL.DDW.*``."""
    ddw = cfg.MODEL.DDW
    return dict(
        threshold=ddw.THRESHOLD,
        gate=ddw.GATE,
        router_hidden_dim=ddw.ROUTER_HIDDEN_DIM,
        memory_efficient=ddw.MEMORY_EFFICIENT,
        skip_unused_nodes=ddw.SKIP_UNUSED_NODES,
        init_edge_weights=[ddw.ROUTER_INIT_CHAIN, ddw.ROUTER_INIT_OTHER]
        if ddw.ROUTER_INIT_CHAIN > 0
        else None,
        router_mode=ddw.ROUTER_MODE,
        aggregation_kernel=ddw.AGGREGATION_KERNEL,
        keep_strongest_input=ddw.KEEP_STRONGEST_INPUT,
    )


def make_dag_stage(cfg, name: str, nodes: Nodes, out_channels: int) -> DAGStage:
    """A :class:`DAGStage` named ``name`` over ``nodes``, configured by ``MODEL.DDW.*``."""
    return dag_stage_factory(**stage_factory_kwargs(cfg))(name, nodes, out_channels)


def lazy_dynamic_kwargs(cfg, stage_names: Sequence[str]) -> dict:
    """The DDW arguments of a family's backbone class from ``cfg``, as LazyConfig values:
    ``dynamic_stages`` (checked), ``stage_factory`` (a ``LazyCall`` of
    :func:`dag_stage_factory`), ``log_period`` and ``freeze_at``."""
    from detectron2.config import LazyCall as L

    return dict(
        dynamic_stages=dynamic_stage_names(cfg, stage_names),
        stage_factory=L(dag_stage_factory)(**stage_factory_kwargs(cfg)),
        log_period=cfg.MODEL.DDW.LOG_PERIOD,
        freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
    )


class DDWBackbone:
    """What every DDW backbone family shares, mixed in before its Detectron2 ``Backbone`` class
    (``class DDWResNet(DDWBackbone, ResNet)``): turning the named stages into DAG stages, with
    the names checked in the constructor (LazyConfig gets the error of the YAML path), and
    ``freeze`` with the routers of frozen stages frozen too.

    A family gives its stages in order (:meth:`named_stages`), says how a stage is held
    (:meth:`_put_stage`) and has a ``stem`` with ``freeze()``.
    """

    def named_stages(self) -> List[Tuple[str, nn.Module]]:
        """``[(name, stage)]`` in forward order."""
        raise NotImplementedError

    def _put_stage(self, index: int, name: str, stage: nn.Module) -> None:
        """Hold ``stage`` as the ``index``-th stage, named ``name``."""
        setattr(self, name, stage)
        self.stages[index] = stage

    @staticmethod
    def stage_nodes(stage: nn.Module) -> Nodes:
        """The nodes of a static stage, as its DAG stage receives them."""
        return list(stage.children())

    def make_stages_dynamic(
        self,
        dynamic_stages: Sequence[str],
        stage_factory: Optional[Callable[[str, Nodes, int], nn.Module]] = None,
        stage_names: Optional[Sequence[str]] = None,
        log_period: int = LOG_PERIOD,
    ) -> None:
        """Replace the stages named in ``dynamic_stages`` by ``stage_factory(name, nodes,
        out_channels)`` (``dag_stage_factory()``, the method's defaults, when None), and log
        their wiring every ``log_period`` training iterations (:meth:`_log_wiring`). Raises
        ValueError for a name not in ``stage_names`` (default: the built stages)."""
        built = self.named_stages()
        check_dynamic_stages(list(dynamic_stages), stage_names or [n for n, _ in built])
        if log_period < 1:
            raise ConfigValueError(f"MODEL.DDW.LOG_PERIOD = {log_period} is invalid: must be >= 1")
        stage_factory = stage_factory or dag_stage_factory()
        for index, (name, stage) in enumerate(built):
            if name in dynamic_stages:
                nodes = self.stage_nodes(stage)
                dag = stage_factory(name, nodes, self._out_feature_channels[name])
                self._put_stage(index, name, dag)
        self.log_period = log_period
        self._wiring_log = None
        if dynamic_stages:
            self._wiring_log = self.register_forward_hook(DDWBackbone._log_wiring)

    def stop_logging_wiring(self) -> None:
        """Remove the training-time wiring log (TorchScript cannot compile it; the export
        functions call this on their copy)."""
        if self._wiring_log is not None:
            self._wiring_log.remove()
            self._wiring_log = None

    @staticmethod
    def _log_wiring(backbone, inputs, outputs) -> None:
        """In training under an active Detectron2 ``EventStorage`` (any trainer: Detectron2's,
        a LazyConfig loop, a project's), put the wiring statistics ``ddw/<stage>/*`` every
        ``log_period`` iterations. Outside those iterations nothing is read back from the
        device."""
        if not backbone.training or capturing_graph():
            return
        try:
            storage = get_event_storage()
        except AssertionError:  # no storage: not under a Detectron2 training loop
            return
        if (storage.iter + 1) % backbone.log_period:
            return
        storage.put_scalars(**telemetry(collect_wiring(backbone)), smoothing_hint=False)

    def freeze(self, freeze_at: int = 0):
        """Freeze the stem (``freeze_at >= 1``) and the first ``freeze_at - 1`` stages (ResNet:
        ``res2..res{freeze_at}``), routers included: no gradients, BatchNorm converted to
        FrozenBatchNorm2d."""
        if freeze_at >= 1:
            self.stem.freeze()
        for index, (_, stage) in enumerate(self.named_stages(), start=2):
            if freeze_at >= index:
                freeze_stage(stage)
        return self


UNTRAINED = (
    "MODEL.WEIGHTS is empty: the DDW backbone starts from random weights, so until it is trained "
    "its predictions and wirings are those of an untrained model. Set MODEL.WEIGHTS to use "
    "trained weights."
)


def dynamic_stage_names(cfg, stage_names: Sequence[str]):
    """The validated ``MODEL.DDW.DYNAMIC_STAGES`` for a backbone with ``stage_names``."""
    check_ddw_config(cfg, stage_names)
    return list(cfg.MODEL.DDW.DYNAMIC_STAGES)


def warn_if_untrained(cfg) -> None:
    """The builders' warning that an empty ``MODEL.WEIGHTS`` gives an untrained model."""
    if not cfg.MODEL.WEIGHTS:
        logging.getLogger(__name__).warning(UNTRAINED)


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
