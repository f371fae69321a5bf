import copy
import weakref

import pytest
import torch
from torch import nn

from ddw_detectron.layers import (
    DAGStage,
    ScriptableDAGStage,
    collect_wiring,
    make_scriptable,
    sparsity_loss,
    use_wiring,
)
from tests.helpers import Block, C, force_wiring, make_stage


def chain(n):
    return {(i, i + 1) for i in range(n - 1)}


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("memory_efficient", [True, False])
def test_chain_wiring_equals_running_nodes_in_sequence(training, memory_efficient):
    stage = make_stage(5, threshold=0.5, memory_efficient=memory_efficient)
    force_wiring(stage, chain(5))
    stage.train(training)
    x = torch.randn(2, 3, 16, 16)
    expected = x
    for i in range(5):
        expected = stage.node(i)(expected)
    assert torch.equal(stage(x), expected)


def test_adjacency_buffer_at_eval_is_thresholded_and_strictly_upper():
    stage = make_stage(5, threshold=0.5).eval()
    with torch.no_grad():
        for router in stage.routers:
            router.fc.weight.normal_(std=2.0)
    stage(torch.randn(6, 3, 16, 16))
    a = stage.adjacency
    assert a.shape == (6, 5, 5) and not a.requires_grad
    assert (a[a <= 0.5] == 0).all()
    assert (a > 0.5).any() and (a == 0).sum() > torch.tril(torch.ones(5, 5)).sum() * 6
    assert (torch.tril(a) == 0).all()


def test_ste_gives_router_gradient_for_dropped_edges():
    stage = make_stage(4, threshold=0.5, gate="ste").train()
    with torch.no_grad():
        for router in stage.routers:
            router.fc.weight.zero_()
            router.fc.bias.fill_(-1.0)  # sigmoid(-1) = 0.27 < tau: every non-chain edge dropped
            router.fc.bias[0] = 3.0  # chain edges kept
    out = stage(torch.randn(2, 3, 16, 16))
    assert stage.adjacency[:, 0, 2].eq(0).all() and stage.adjacency[:, 0, 1].gt(0.5).all()
    out.square().mean().backward()
    dropped_bias_grads = stage.routers[0].fc.bias.grad[1:]
    assert (dropped_bias_grads != 0).all()


def test_soft_gate_trains_without_threshold_but_thresholds_at_eval():
    stage = make_stage(4, threshold=0.5, gate="soft").train()
    with torch.no_grad():
        for router in stage.routers:
            router.fc.bias.fill_(-1.0)
    x = torch.randn(2, 3, 16, 16)
    out = stage(x)
    upper = stage.adjacency[:, 0, 1:]
    assert ((upper > 0) & (upper < 0.5)).all()
    out.mean().backward()
    assert stage.routers[0].fc.bias.grad.abs().min() > 0
    stage.eval()
    with torch.no_grad():
        stage(x)
    assert (stage.adjacency == 0).all()


def test_samples_with_different_wirings_get_their_own_output():
    stage = make_stage(5, threshold=0.3).eval()
    with torch.no_grad():
        for router in stage.routers:
            router.fc.weight.normal_(std=3.0)
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        batched = stage(x)
        wirings = stage.adjacency.clone()
        assert not torch.equal(wirings[0], wirings[1])
        for b in range(4):
            alone = stage(x[b : b + 1])
            torch.testing.assert_close(alone, batched[b : b + 1], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(stage.adjacency[0], wirings[b])


def test_skipping_unused_nodes_is_exact_and_really_skips():
    n = 5
    # Node 2 gets no kept edge (0->2 and 1->2 dropped): its input is all-zero.
    on = {(0, 1), (0, 3), (1, 3), (2, 3), (3, 4), (2, 4)}
    reference = make_stage(n, threshold=0.5).eval()
    skipping = make_stage(n, threshold=0.5, skip_unused_nodes=True).eval()
    skipping.load_state_dict(reference.state_dict())
    force_wiring(reference, on)
    force_wiring(skipping, on)
    images = [torch.randn(1, 3, 16, 16) for _ in range(3)]
    with torch.no_grad():
        for x in images:
            assert torch.equal(skipping(x), reference(x))
            assert skipping.skipped_nodes == [2]
    assert reference.node(2).calls == 3
    assert skipping.node(2).calls == 1  # once, to fill the cache for its all-zero input
    assert skipping.node(1).calls == 3
    skipping.eval()  # evaluators call eval() before every run: the cache stays
    with torch.no_grad():
        skipping(images[0])
    assert skipping.node(2).calls == 1
    skipping.train().eval()
    with torch.no_grad():
        skipping(images[0])
    assert skipping.node(2).calls == 2
    with torch.no_grad():
        skipping.node(2).conv1.bias.add_(1.0)  # changed weights invalidate the cache
        reference.node(2).conv1.bias.add_(1.0)
        assert torch.equal(skipping(images[0]), reference(images[0]))
    assert skipping.node(2).calls == 3


def scripted(stage):
    return torch.jit.script(make_scriptable(copy.deepcopy(stage)))


def count_op(module, x, name):
    with torch.no_grad(), torch.profiler.profile() as prof:
        module(x)
    return sum(event.count for event in prof.key_averages() if event.key == name)


@pytest.mark.parametrize("batch", [1, 3])
def test_scripted_stage_is_bit_identical_to_eager(batch):
    stage = make_stage(5, threshold=0.5).eval()
    with torch.no_grad():
        for router in stage.routers:
            router.fc.weight.normal_(std=3.0)
    script = scripted(stage)
    wirings = set()
    for seed in range(4):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, 3, 16, 16, generator=g) + 3 * torch.randn(
            batch, 3, 1, 1, generator=g
        )
        with torch.no_grad():
            expected = stage(x)
        wirings.update(tuple((a > 0).flatten().tolist()) for a in stage.adjacency)
        assert torch.equal(script(x), expected)
    assert len(wirings) >= 3  # so at least two have dropped edges


def test_scripted_stage_computes_only_kept_edges():
    n = 5
    # Kept incoming edges: node 1 {0}, node 2 none, node 3 {0, 1, 2}, node 4 {2, 3}.
    on = {(0, 1), (0, 3), (1, 3), (2, 3), (3, 4), (2, 4)}
    stage = make_stage(n, threshold=0.5).eval()
    x = torch.randn(1, 3, 16, 16)
    force_wiring(stage, on)
    sparse = scripted(stage)
    force_wiring(stage, {(i, j) for i in range(n) for j in range(i + 1, n)})
    dense = scripted(stage)
    # One multiply into the output and one addcmul_ per further kept edge, node by node.
    assert count_op(sparse, x, "aten::addcmul_") == 0 + 0 + 2 + 1
    assert count_op(dense, x, "aten::addcmul_") == 0 + 1 + 2 + 3
    force_wiring(stage, on)
    with torch.no_grad():
        assert torch.equal(sparse(x), stage(x))


def test_make_scriptable_replaces_every_reference():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.stage = make_stage(3)
            self.stages = [self.stage]
            self.pairs = [(self.stage, "s")]

    holder = make_scriptable(Holder())
    assert isinstance(holder.stage, ScriptableDAGStage)
    assert holder.stages[0] is holder.stage and holder.pairs[0][0] is holder.stage
    assert not any(isinstance(m, DAGStage) for m in holder.modules())
    assert isinstance(make_scriptable(make_stage(3)), ScriptableDAGStage)


def test_copy_after_a_training_forward():
    stage = make_stage(4).train()
    stage(torch.randn(2, 3, 16, 16))
    assert stage.edge_weight_l1.requires_grad
    clone = copy.deepcopy(stage)
    assert clone.adjacency is None and clone.edge_weight_l1 is None
    assert stage.edge_weight_l1 is not None
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(clone.eval()(x), stage.eval()(x))


@pytest.mark.parametrize("training", [True, False])
def test_no_host_reads_off_the_cpu(training):
    # On a device other than the CPU neither the training forward and backward nor batched
    # inference reads the wiring back (a meta tensor has no values to read).
    stage = make_stage(4, threshold=0.5, skip_unused_nodes=True).to("meta").train(training)
    x = torch.empty(2, 3, 16, 16, device="meta")
    with torch.set_grad_enabled(training):
        out = stage(x)
        if training:
            (out.sum() + stage.edge_weight_l1).backward()
    assert out.shape == (2, C, 8, 8) and stage.adjacency.shape == (2, 4, 4)


def test_no_skipping_for_batches_or_training():
    stage = make_stage(4, threshold=0.5, skip_unused_nodes=True).eval()
    force_wiring(stage, {(0, 1), (0, 3), (1, 3), (2, 3)})
    with torch.no_grad():
        stage(torch.randn(2, 3, 16, 16))
    assert stage.skipped_nodes == []


def test_memory_efficient_matches_plain_and_frees_aggregated_inputs():
    results = {}
    for memory_efficient in (True, False):
        stage = make_stage(4, threshold=0.2, memory_efficient=memory_efficient).train()
        with torch.no_grad():
            for router in stage.routers:
                router.fc.weight.normal_(std=1.0)
        inputs = []
        stage.node(3).register_forward_pre_hook(lambda m, args: inputs.append(weakref.ref(args[0])))
        x = torch.randn(2, 3, 16, 16)
        out = stage(x)
        alive_after_forward = inputs[0]() is not None
        out.square().sum().backward()
        grads = [p.grad.clone() for p in stage.parameters()]
        results[memory_efficient] = (out.detach(), grads, alive_after_forward)
    out_a, grads_a, alive_a = results[True]
    out_b, grads_b, alive_b = results[False]
    torch.testing.assert_close(out_a, out_b)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(a, b)
    assert not alive_a, "the buffered stage kept the aggregated input u_j alive for backward"
    assert alive_b


def test_collect_wiring_and_sparsity_loss():
    model = nn.Sequential(make_stage(3), nn.Identity())
    model[0].wiring_name = "res2"
    assert collect_wiring(model) == {}
    model.train()
    model(torch.randn(2, 3, 16, 16))
    wiring = collect_wiring(model)
    assert list(wiring) == ["res2"] and wiring["res2"].shape == (2, 3, 3)
    loss = sparsity_loss(model)
    routers = model[0].routers
    assert loss is not None and loss.requires_grad and loss > 0
    loss.backward()
    assert routers[0].fc.bias.grad.gt(0).all()
    model.eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 16, 16))
    assert sparsity_loss(model) is None


def by_hand(stage, x, adjacency):
    """The stage's output for one image ``x`` [1, ...] under the wiring ``adjacency`` [n, n]."""
    outputs = [stage.node(0)(x)]
    for j in range(1, len(stage)):
        u = sum(adjacency[i, j] * outputs[i] for i in range(j))
        outputs.append(stage.node(j)(u))
    return outputs[-1]


def test_random_start_gives_different_images_different_wirings_at_step_zero():
    stage = make_stage(4).train()  # the routers' plain random initialisation
    stage(torch.randn(4, 3, 16, 16) + 2 * torch.randn(4, 3, 1, 1))
    a = stage.adjacency
    assert (a[:, 0, 1:].max(dim=0).values - a[:, 0, 1:].min(dim=0).values).min() > 1e-3


@pytest.mark.parametrize("training", [True, False])
def test_static_router_mode_gives_every_image_one_wiring_and_trains_it(training):
    stage = make_stage(5, threshold=0.3, router_mode="shared").train(training)
    x = torch.randn(4, 3, 16, 16) + 3 * torch.randn(4, 3, 1, 1)
    with torch.set_grad_enabled(training):
        out = stage(x)
    a = stage.adjacency
    assert torch.equal(a, a[:1].expand_as(a))
    assert (a[0][a[0] != 0] > 0.3).all()
    if training:
        (out.square().mean() + stage.edge_weight_l1).backward()
        for router in stage.routers:
            assert router.logits.grad.abs().min() > 0
    else:
        for b in range(4):
            torch.testing.assert_close(out[b : b + 1], by_hand(stage, x[b : b + 1], a[0]))


def test_static_router_mode_scripts_bit_identically():
    stage = make_stage(5, threshold=0.3, router_mode="shared").eval()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(scripted(stage)(x), stage(x))


def test_use_wiring_evaluates_each_image_with_the_matrix_it_is_given():
    stage = make_stage(4, threshold=0.2).eval()
    stage.wiring_name = "res2"
    model = nn.Sequential(stage)
    with torch.no_grad():
        for router in stage.routers:
            router.fc.weight.normal_(std=3.0)
    x = torch.randn(2, 3, 16, 16) + 3 * torch.randn(2, 3, 1, 1)
    with torch.no_grad():
        own = model(x)
        wiring = stage.adjacency.clone()
        assert not torch.equal(wiring[0], wiring[1])
        with use_wiring(model, {"res2": wiring.flip(0)}):  # each image gets the other's
            swapped = model(x)
        assert torch.equal(stage.adjacency, wiring.flip(0))
        for b in range(2):
            torch.testing.assert_close(
                swapped[b : b + 1], by_hand(stage, x[b : b + 1], wiring[1 - b])
            )
            torch.testing.assert_close(own[b : b + 1], by_hand(stage, x[b : b + 1], wiring[b]))
        assert stage.forced_adjacency is None  # released after the block
        assert torch.equal(model(x), own)


def test_use_wiring_refuses_unknown_stages_and_wrong_shapes():
    stage = make_stage(3)
    stage.wiring_name = "res2"
    with pytest.raises(ValueError, match="no DAG stage named \\['res9'\\]"):
        with use_wiring(stage, {"res9": torch.zeros(1, 3, 3)}):
            pass
    with pytest.raises(ValueError, match="forced_adjacency must be \\[2, 3, 3\\]"):
        with use_wiring(stage, {"res2": torch.zeros(1, 3, 3)}):
            stage(torch.randn(2, 3, 8, 8))


def test_single_node_stage_is_its_node():
    stage = make_stage(1)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(stage(x), stage.node(0)(x))
    assert stage.adjacency.shape == (2, 1, 1) and len(stage.routers) == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(threshold=1.0), "threshold must be in \\[0, 1\\)"),
        (dict(threshold=-0.1), "threshold"),
        (dict(gate="hard"), "gate must be one of"),
        (dict(init_edge_weights=(1.0, 0.05)), "init_edge_weights"),
        (dict(router_mode="fixed"), "router_mode must be one of"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_stage(3, **kwargs)


def test_no_nodes():
    with pytest.raises(ValueError, match="nodes must hold at least 1"):
        DAGStage([], C)


def test_nodes_with_disagreeing_shapes():
    stage = DAGStage([Block(3), Block(), nn.Conv2d(C, C, 3, stride=2, padding=1)], C)
    with pytest.raises(ValueError, match="node 2 gave"):
        stage(torch.randn(1, 3, 8, 8))


def every_weight_at(stage, p):
    """Every router outputs ``p`` for every edge and image."""
    with torch.no_grad():
        for router in stage.routers:
            router.fc.weight.zero_()
            router.fc.bias.fill_(torch.logit(torch.tensor(p)).item())


@pytest.mark.parametrize("training", [True, False])
def test_a_stage_with_every_weight_under_the_threshold_keeps_a_path_when_asked(training):
    """Every edge at 0.05 under a threshold of 0.1: without keep_strongest_input the last node
    has no input and the stage output is the same for two different images; with it every node
    keeps its strongest edge (a tie here: all of them) and the output depends on the image."""
    x = torch.randn(2, 3, 16, 16)
    outputs = {}
    for keep in (False, True):
        stage = make_stage(4, threshold=0.1, keep_strongest_input=keep).train(training)
        every_weight_at(stage, 0.05)
        outputs[keep] = stage(x)
        kept = stage.adjacency
        assert bool((kept[:, :, 1:] != 0).any(dim=1).all()) == keep
    assert torch.equal(outputs[False][0], outputs[False][1])
    assert (outputs[True][0] - outputs[True][1]).abs().max() > 1e-3
