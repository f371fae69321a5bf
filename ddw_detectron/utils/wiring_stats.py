"""Statistics of a batch of adjacency matrices (pure PyTorch)."""

from typing import Dict, List, Optional, Sequence

import torch

__all__ = [
    "TELEMETRY_KEYS",
    "collapse_signals",
    "disconnected",
    "dataset_statistics",
    "dead_nodes",
    "edge_usage",
    "telemetry",
    "upper_edges",
    "wiring_statistics",
]


def upper_edges(adjacency: torch.Tensor) -> torch.Tensor:
    """``[N, n(n-1)/2]`` edge weights ``(i, j), i < j`` in row-major order of ``[N, n, n]``."""
    n = adjacency.shape[-1]
    upper = torch.triu_indices(n, n, offset=1, device=adjacency.device)
    return adjacency[:, upper[0], upper[1]].float()


def wiring_statistics(adjacency: torch.Tensor) -> Dict[str, float]:
    """For ``[B, n, n]`` adjacency matrices (strictly upper triangular, dropped edges 0):

    - ``mean_edge_weight``: mean weight over all edges ``i < j`` and images;
    - ``kept``: share of those edges with a non-zero weight;
    - ``diversity``: mean over image pairs of the mean absolute difference of their edge
      weights (0 when every image has the same wiring; NaN-free, 0 for a single image).
    """
    b, n, _ = adjacency.shape
    if n < 2:
        return {"mean_edge_weight": 0.0, "kept": 0.0, "diversity": 0.0}
    edges = upper_edges(adjacency)
    diversity = 0.0
    if b > 1:
        distances = torch.cdist(edges, edges, p=1) / edges.shape[1]
        diversity = float(distances.sum() / (b * (b - 1)))
    return {
        "mean_edge_weight": float(edges.mean()),
        "kept": float((edges > 0).float().mean()),
        "diversity": diversity,
    }


def _chain_mask(n: int) -> torch.Tensor:
    """``[n(n-1)/2]`` booleans over :func:`upper_edges`: True for the chain edges ``i -> i+1``."""
    upper = torch.triu_indices(n, n, offset=1)
    return upper[1] == upper[0] + 1


def edge_usage(adjacency: torch.Tensor) -> Dict[str, float]:
    """How much of the DAG ``[N, n, n]`` wirings use beyond the chain ``0 -> 1 -> ... -> n-1``
    (the static network's path):

    - ``non_chain_kept_share``: share of the kept edges that are not chain edges;
    - ``images_with_non_chain``: share of images that keep at least one non-chain edge;
    - ``distinct_patterns``: number of distinct sets of kept edges among the images.
    """
    edges = upper_edges(adjacency)
    if edges.shape[1] == 0:
        return {"non_chain_kept_share": 0.0, "images_with_non_chain": 0.0, "distinct_patterns": 1}
    is_kept = edges > 0
    other = is_kept[:, ~_chain_mask(adjacency.shape[-1])]
    return {
        "non_chain_kept_share": float(other.sum()) / max(1, int(is_kept.sum())),
        "images_with_non_chain": float(other.any(dim=1).float().mean()),
        "distinct_patterns": int(torch.unique(is_kept, dim=0).shape[0]),
    }


def disconnected(adjacency: torch.Tensor) -> torch.Tensor:
    """``[B]`` booleans over ``[B, n, n]`` wirings: True where no path of kept edges leads from
    node 0 to the last node, so that the stage's output does not depend on the image."""
    b, n, _ = adjacency.shape
    reached = torch.zeros(b, n, dtype=torch.bool)
    reached[:, 0] = True
    is_kept = adjacency != 0
    for j in range(1, n):
        reached[:, j] = (is_kept[:, :j, j] & reached[:, :j]).any(dim=1)
    return ~reached[:, n - 1]


def collapse_signals(adjacency: torch.Tensor) -> Dict[str, float]:
    """What shows a stage losing its path, for ``[B, n, n]`` wirings (as used: dropped edges 0):

    - ``no_input``: share of (image, node ``j >= 1``) pairs with no kept incoming edge;
    - ``disconnected``: share of images for which the stage output does not depend on the image
      (:func:`disconnected`);
    - ``min_max_in_edge``: the smallest, over images and nodes ``j >= 1``, of the node's largest
      kept incoming weight (0 once a node of some image has lost every input).
    """
    n = adjacency.shape[-1]
    if n < 2 or adjacency.shape[0] == 0:
        return {"no_input": 0.0, "disconnected": 0.0, "min_max_in_edge": 1.0}
    columns = torch.stack([adjacency[:, :j, j].max(dim=1).values for j in range(1, n)], dim=1)
    return {
        "no_input": float((columns == 0).float().mean()),
        "disconnected": float(disconnected(adjacency).float().mean()),
        "min_max_in_edge": float(columns.min()),
    }


# What training logs per stage as ``ddw/<stage>/<key>``.
TELEMETRY_KEYS = (
    "mean_edge_weight",
    "kept",
    "diversity",
    "non_chain_kept_share",
    "no_input",
    "disconnected",
    "min_max_in_edge",
)


def telemetry(wiring: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """``{"ddw/<stage>/<key>": value}`` of :data:`TELEMETRY_KEYS` for ``{stage: [B, n, n]}``
    (a read of the small matrices, on the host)."""
    scalars = {}
    for stage, adjacency in wiring.items():
        adjacency = adjacency.detach().float().cpu()
        figures = {
            **wiring_statistics(adjacency),
            **edge_usage(adjacency),
            **collapse_signals(adjacency),
        }
        for key in TELEMETRY_KEYS:
            scalars[f"ddw/{stage}/{key}"] = float(figures[key])
    return scalars


def dead_nodes(adjacency: torch.Tensor) -> List[int]:
    """Nodes ``i < n-1`` of ``[N, n, n]`` wirings whose outgoing edges are dropped (0) for every
    image: computed, but feeding nothing onward (the last node is the stage output)."""
    n = adjacency.shape[-1]
    feeds = (adjacency != 0).any(dim=0).any(dim=1)
    return [i for i in range(n - 1) if not bool(feeds[i])]


def _class_mean_difference(class_means: Dict[str, torch.Tensor]) -> float:
    """Mean over pairs of classes of the mean absolute difference of their mean edge weights."""
    means = [upper_edges(m[None])[0] for m in class_means.values()]
    pairs = [(a - b).abs().mean() for k, a in enumerate(means) for b in means[k + 1 :]]
    return float(torch.stack(pairs).mean()) if pairs else 0.0


def dataset_statistics(
    wirings: Dict[str, torch.Tensor],
    labels: Optional[Sequence[int]] = None,
    class_names: Optional[Sequence[str]] = None,
) -> Dict:
    """Statistics of the wirings of ``N`` images, ``{stage: Tensor[N, n, n]}``.

    Per stage: ``edge_mean`` and ``edge_std`` (``[n, n]``, over images), ``kept`` (share of
    edges above the threshold), ``diversity`` (mean over image pairs of the mean absolute
    difference of their edge weights, as :func:`wiring_statistics`), the :func:`edge_usage`
    figures, and with ``labels`` the ``class_mean`` wiring of each class present and
    ``class_mean_difference`` (mean over class pairs of the mean absolute difference of their
    mean wirings). Plus ``embedding``: 2-D principal-component coordinates of every image's
    wiring (all stages' edges concatenated), and ``distinct_patterns``: the number of distinct
    sets of kept edges over all stages together.
    """
    result: Dict = {"num_images": 0, "stages": {}}
    features = []
    for stage, adjacency in wirings.items():
        adjacency = adjacency.float()
        count, n, _ = adjacency.shape
        result["num_images"] = count
        entry = {
            "num_nodes": n,
            "edge_mean": adjacency.mean(0).tolist(),
            "edge_std": adjacency.std(0, unbiased=False).tolist(),
            **wiring_statistics(adjacency),
            **edge_usage(adjacency),
        }
        if labels is not None:
            label_tensor = torch.as_tensor(list(labels))
            means = {}
            for label in sorted(set(label_tensor.tolist())):
                name = class_names[label] if class_names is not None else str(label)
                means[name] = adjacency[label_tensor == label].mean(0)
            entry["class_mean"] = {name: mean.tolist() for name, mean in means.items()}
            entry["class_mean_difference"] = _class_mean_difference(means)
        result["stages"][stage] = entry
        if n > 1:
            features.append(upper_edges(adjacency))
    if features:
        result["distinct_patterns"] = int(
            torch.unique(torch.cat(features, dim=1) > 0, dim=0).shape[0]
        )
    if features and result["num_images"] > 1:
        x = torch.cat(features, dim=1).double()
        x = x - x.mean(0, keepdim=True)
        _, _, v = torch.linalg.svd(x, full_matrices=False)
        result["embedding"] = (x @ v[:2].T).tolist() if v.shape[0] >= 2 else (x @ v[:1].T).tolist()
    return result
