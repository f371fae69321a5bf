"""torch.compile of DDW backbones: whole graphs (no break) in training and inference for every
family, one compilation for a training step, and compiled outputs and gradients equal to eager
(``aot_eager``: Dynamo and AOTAutograd's forward/backward split, without code generation)."""

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

from ddw_detectron.modeling import FAMILIES
from tests.helpers import make_cfg

pytestmark = pytest.mark.long(80)


def backbone(family, **overrides):
    cfg = make_cfg(family, **{"MODEL.RESNETS.DEPTH": 34, **overrides})
    torch.manual_seed(0)
    model = FAMILIES[family].build_bottom_up(cfg)
    # Routers with input-dependent weights and some edges dropped, as after training.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".routers." in name:
                p.normal_(0.0, 0.5)
    return model


def loss_of(model, x):
    return sum(v.float().pow(2).mean() for v in model(x).values())


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize(
    "gate,memory_efficient", [("ste", True), ("ste", False), ("soft", True), ("soft", False)]
)
def test_training_step_compiles_whole(family, gate, memory_efficient):
    model = backbone(
        family, **{"MODEL.DDW.GATE": gate, "MODEL.DDW.MEMORY_EFFICIENT": memory_efficient}
    ).train()
    torch._dynamo.reset()
    explained = torch._dynamo.explain(lambda x: loss_of(model, x))(torch.randn(2, 3, 64, 64))
    assert explained.graph_break_count == 0, [r.reason for r in explained.break_reasons][:3]
    assert explained.graph_count == 1


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_inference_at_batch_2_compiles_whole(family):
    model = backbone(family).eval()
    torch._dynamo.reset()
    with torch.no_grad():
        explained = torch._dynamo.explain(model)(torch.randn(2, 3, 64, 64))
    assert explained.graph_break_count == 0 and explained.graph_count == 1


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_compiled_training_matches_eager_with_one_compilation(family):
    eager = backbone(family).train()
    compiled = backbone(family).train()
    counter = CompileCounterWithBackend("aot_eager")
    torch._dynamo.reset()
    compiled.compile(backend=counter, fullgraph=True)
    for step in range(2):
        x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(step))
        losses = [loss_of(m, x) for m in (eager, compiled)]
        for loss in losses:
            loss.backward()
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)
        # float32 sums in another order: tolerances relative to the largest gradient (some BN
        # bias gradients are cancellations of order 1e-7 of it).
        scale = max(float(p.grad.abs().max()) for p in eager.parameters())
        for (name, a), b in zip(eager.named_parameters(), compiled.parameters()):
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-3, atol=1e-4 * scale, msg=name)
        kept = [s.adjacency for s in compiled.modules() if hasattr(s, "routers")]
        assert any(bool(((a > 0) & (a < 0.5)).any()) for a in kept)  # a wiring, not all-ones
    assert counter.frame_count == 1  # one graph for both steps: no per-stage or per-router one
