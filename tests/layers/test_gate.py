import pytest
import torch

from ddw_detectron.layers.gate import gate_weights


def test_edges_at_or_under_the_threshold_are_dropped():
    w = torch.tensor([[0.05, 0.1, 0.3], [0.9, 0.2, 0.1]])
    assert torch.equal(
        gate_weights(w, 0.1, False), torch.tensor([[0.0, 0.0, 0.3], [0.9, 0.2, 0.0]])
    )


def test_a_node_with_every_edge_under_the_threshold_keeps_its_strongest_only_when_asked():
    w = torch.tensor([[0.05, 0.08, 0.02], [0.5, 0.08, 0.02]])
    assert torch.equal(gate_weights(w, 0.1, False)[0], torch.zeros(3))
    kept = gate_weights(w, 0.1, True)
    # Row 0 keeps its strongest edge at its own weight; row 1 already had an edge, unchanged.
    assert torch.equal(kept, torch.tensor([[0.0, 0.08, 0.0], [0.5, 0.0, 0.0]]))


def test_a_tie_keeps_every_strongest_edge():
    w = torch.tensor([[0.04, 0.07, 0.07]])
    assert torch.equal(gate_weights(w, 0.1, True), torch.tensor([[0.0, 0.07, 0.07]]))


@pytest.mark.parametrize("keep", [False, True])
def test_no_edges(keep):
    assert gate_weights(torch.zeros(2, 0), 0.1, keep).shape == (2, 0)


def test_scripts():
    scripted = torch.jit.script(gate_weights)
    w = torch.rand(5, 4) * 0.2
    assert torch.equal(scripted(w, 0.1, True), gate_weights(w, 0.1, True))
