import torch

from ddw_detectron.utils.wiring_stats import (
    collapse_signals,
    dataset_statistics,
    dead_nodes,
    disconnected,
    edge_usage,
    upper_edges,
    wiring_statistics,
)


def test_dataset_statistics_by_hand():
    a = torch.zeros(3, 3, 3)
    a[0, 0, 1], a[0, 0, 2], a[0, 1, 2] = 1.0, 0.0, 1.0
    a[1, 0, 1], a[1, 0, 2], a[1, 1, 2] = 1.0, 1.0, 0.0
    a[2, 0, 1], a[2, 0, 2], a[2, 1, 2] = 0.5, 0.5, 0.5
    stats = dataset_statistics({"s1": a}, labels=[0, 0, 1], class_names=["cat", "dog"])
    s1 = stats["stages"]["s1"]
    assert stats["num_images"] == 3
    assert torch.allclose(torch.tensor(s1["edge_mean"]), a.mean(0))
    assert (
        abs(s1["edge_std"][0][2] - torch.tensor([0.0, 1.0, 0.5]).std(unbiased=False).item()) < 1e-6
    )
    assert abs(s1["kept"] - 7 / 9) < 1e-6
    # pairwise mean |difference| of the edge vectors (1,0,1), (1,1,0), (.5,.5,.5): 2/3, 1/2, 1/2
    assert abs(s1["diversity"] - (2 / 3 + 0.5 + 0.5) / 3) < 1e-6
    assert s1["class_mean"]["cat"] == [[0.0, 1.0, 0.5], [0.0, 0.0, 0.5], [0.0, 0.0, 0.0]]
    assert s1["class_mean"]["dog"] == a[2].tolist()
    embedding = torch.tensor(stats["embedding"], dtype=torch.float64)
    assert embedding.shape == (3, 2)
    # PCA keeps pairwise distances when all variance is in two components (3 points).
    edges = upper_edges(a).double()
    torch.testing.assert_close(
        torch.cdist(embedding, embedding), torch.cdist(edges, edges), rtol=1e-6, atol=1e-6
    )


def test_edge_usage_counts_non_chain_edges_and_patterns():
    a = torch.zeros(4, 3, 3)
    a[:, 0, 1] = a[:, 1, 2] = 0.9  # the chain, kept by every image
    a[1, 0, 2] = 0.4  # one image also keeps the skip edge 0 -> 2
    a[3, 0, 2] = 0.2
    a[3, 1, 2] = 0.0  # and one drops a chain edge for it
    usage = edge_usage(a)
    assert usage["non_chain_kept_share"] == 2 / 9
    assert usage["images_with_non_chain"] == 0.5
    assert usage["distinct_patterns"] == 3
    assert edge_usage(torch.zeros(2, 1, 1))["distinct_patterns"] == 1


def test_class_mean_difference_and_patterns_over_stages():
    a = torch.zeros(3, 3, 3)
    a[:, 0, 1] = 1.0
    a[2, 0, 2] = 0.6
    b = torch.zeros(3, 2, 2)
    b[0, 0, 1] = 1.0
    stats = dataset_statistics({"s1": a, "s2": b}, labels=[0, 0, 1], class_names=["cat", "dog"])
    # class means differ only at edge (0, 2): 0 vs 0.6, over 3 edges
    assert abs(stats["stages"]["s1"]["class_mean_difference"] - 0.2) < 1e-6
    assert stats["stages"]["s2"]["class_mean_difference"] == 0.5
    # (s1 kept, s2 kept) patterns: image 0 (chain, 1), image 1 (chain, 0), image 2 (chain + skip, 0)
    assert stats["distinct_patterns"] == 3


def test_dead_nodes_feed_nothing_for_any_image():
    a = torch.zeros(2, 4, 4)
    a[0, 0, 1] = a[0, 1, 3] = 0.5  # image 0: 0 -> 1 -> 3; node 2 feeds nothing
    a[1, 0, 3] = 0.7  # image 1: 0 -> 3; nodes 1 and 2 feed nothing
    assert dead_nodes(a) == [2]
    assert dead_nodes(a[1:]) == [1, 2]
    assert dead_nodes(torch.zeros(3, 1, 1)) == []


def test_wiring_statistics_by_hand():
    a = torch.zeros(2, 3, 3)
    a[0, 0, 1], a[0, 0, 2], a[0, 1, 2] = 1.0, 0.0, 0.5
    a[1, 0, 1], a[1, 0, 2], a[1, 1, 2] = 0.5, 0.5, 0.5
    stats = wiring_statistics(a)
    assert stats["mean_edge_weight"] == torch.tensor([1.0, 0.0, 0.5, 0.5, 0.5, 0.5]).mean().item()
    assert abs(stats["kept"] - 5 / 6) < 1e-7
    assert abs(stats["diversity"] - (0.5 + 0.5 + 0.0) / 3) < 1e-7
    assert wiring_statistics(a[:1])["diversity"] == 0.0


def test_collapse_signals_by_hand():
    a = torch.zeros(4, 4, 4)
    a[0, 0, 1], a[0, 1, 2], a[0, 2, 3] = 0.9, 0.8, 0.7  # the chain: connected
    a[1, 0, 1], a[1, 0, 3] = 0.9, 0.3  # node 2 has no input, the output is still reached
    a[2, 0, 1], a[2, 0, 2] = 0.9, 0.6  # node 3 has no input: disconnected
    a[3, 1, 2], a[3, 2, 3] = 0.5, 0.5  # node 1 has no input: 1 -> 2 -> 3 starts nowhere
    assert disconnected(a).tolist() == [False, False, True, True]
    signals = collapse_signals(a)
    assert abs(signals["no_input"] - 3 / 12) < 1e-6
    assert signals["disconnected"] == 0.5
    assert signals["min_max_in_edge"] == 0.0
    signals = collapse_signals(a[:1])
    assert (signals["no_input"], signals["disconnected"]) == (0.0, 0.0)
    assert abs(signals["min_max_in_edge"] - 0.7) < 1e-6
