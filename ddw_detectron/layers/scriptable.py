"""The inference computation of :class:`DAGStage` in code that ``torch.jit.script`` compiles."""

from typing import Dict, List, Optional, Tuple

from torch import Tensor, nn

from .aggregate import nonzero_columns, sum_nonzero
from .dag_stage import DAGStage
from .gate import gate_weights, incoming_column

__all__ = ["ScriptableDAGStage", "make_scriptable"]


class _NodeAndRouter(nn.Module):
    """One node and the router reading its output (None for the last node)."""

    def __init__(self, node: nn.Module, router: Optional[nn.Module]):
        super().__init__()
        self.node = node
        self.router = router

    def forward(self, u: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        out = self.node(u)
        if self.router is None:
            return out, None
        return out, self.router(out)


class ScriptableDAGStage(nn.Module):
    """The inference forward of a :class:`DAGStage` in code that TorchScript scripting compiles.

    The scripted graph keeps the per-image control flow of eager inference: each image's wiring
    is computed, the threshold applied, and an edge dropped for every image of the batch is not
    computed (a node with no kept incoming edge gets an all-zero input). Outputs are
    bit-identical to the eager stage in eval mode. Without autograd it is for inference only;
    the nodes and routers are those of the stage it was made from (its state-dict keys are
    ``steps.<j>.node.*`` and ``steps.<j>.router.*``).

    Shapes: ``[B, C_in, H_in, W_in]`` to ``[B, C, H, W]``, as the stage.
    """

    def __init__(self, stage: DAGStage):
        super().__init__()
        routers: List[Optional[nn.Module]] = list(stage.routers) + [None]
        self.steps = nn.ModuleList(
            _NodeAndRouter(node, router) for node, router in zip(stage.nodes(), routers)
        )
        self.num_nodes = stage.num_nodes
        self.threshold = stage.threshold
        self.keep_strongest_input = stage.keep_strongest_input

    def forward(self, x: Tensor) -> Tensor:
        outputs: List[Tensor] = []
        rows: List[List[Tensor]] = []  # each router's output as columns
        for j, step in enumerate(self.steps):
            if j == 0:
                u = x
            else:
                raw = incoming_column(rows, j)
                weights = gate_weights(raw, self.threshold, self.keep_strongest_input)
                u = sum_nonzero(outputs, weights, nonzero_columns(weights))
            out, row = step(u)
            outputs.append(out)
            if row is not None:
                rows.append(row.unbind(dim=1))
        return outputs[-1]


def make_scriptable(model: nn.Module) -> nn.Module:
    """Replace, in place, every :class:`DAGStage` in ``model`` by its
    :class:`ScriptableDAGStage`: as a registered child and wherever a module keeps it in a list
    or tuple attribute (e.g. Detectron2's ``ResNet.stages``). Returns ``model`` (or the
    replacement if ``model`` is itself a DAGStage). Use on a copy: the result is for inference."""
    if isinstance(model, DAGStage):
        return ScriptableDAGStage(model)
    replacements: Dict[int, ScriptableDAGStage] = {}

    def swap(value):
        if isinstance(value, DAGStage):
            if id(value) not in replacements:
                replacements[id(value)] = ScriptableDAGStage(value)
            return replacements[id(value)]
        if isinstance(value, list):
            return [swap(v) for v in value]
        if isinstance(value, tuple):
            return tuple(swap(v) for v in value)
        return value

    for module in list(model.modules()):
        for name, child in list(module._modules.items()):
            if isinstance(child, DAGStage):
                module._modules[name] = swap(child)
        for name, value in list(vars(module).items()):
            if isinstance(value, (list, tuple)):
                setattr(module, name, swap(value))
    return model
