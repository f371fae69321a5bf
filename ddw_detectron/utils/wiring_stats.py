"""Statistics of a batch of adjacency matrices (pure PyTorch)."""

from typing import Dict, Optional, Sequence

import torch

__all__ = ["wiring_statistics", "dataset_statistics", "upper_edges"]


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


def dataset_statistics(
    wirings: Dict[str, torch.Tensor], labels: Optional[Sequence[int]] = None, class_names: Optional[Sequence[str]] = None
) -> Dict:
    """Statistics of the wirings of ``N`` images, ``{stage: Tensor[N, n, n]}``.

    Per stage: ``edge_mean`` and ``edge_std`` (``[n, n]``, over images), ``kept`` (share of
    edges above the threshold), ``diversity`` (mean over image pairs of the mean absolute
    difference of their edge weights, as :func:`wiring_statistics`), and with ``labels`` the
    ``class_mean`` wiring of each class present. Plus ``embedding``: 2-D principal-component
    coordinates of every image's wiring (all stages' edges concatenated).
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
        }
        if labels is not None:
            label_tensor = torch.as_tensor(list(labels))
            entry["class_mean"] = {}
            for label in sorted(set(label_tensor.tolist())):
                name = class_names[label] if class_names is not None else str(label)
                entry["class_mean"][name] = adjacency[label_tensor == label].mean(0).tolist()
        result["stages"][stage] = entry
        if n > 1:
            features.append(upper_edges(adjacency))
    if features and result["num_images"] > 1:
        x = torch.cat(features, dim=1).double()
        x = x - x.mean(0, keepdim=True)
        _, _, v = torch.linalg.svd(x, full_matrices=False)
        result["embedding"] = (x @ v[:2].T).tolist() if v.shape[0] >= 2 else (x @ v[:1].T).tolist()
    return result
