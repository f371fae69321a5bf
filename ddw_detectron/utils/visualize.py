"""Wiring pictures (matplotlib, Agg): adjacency heatmaps, DAG drawings, grids of images.

In every picture entry ``(i, j)`` / the edge ``i -> j`` is the weight with which node ``j`` reads
node ``i``'s output; 0 means dropped. Colours come from ``CMAP`` over [0, 1].
"""

from typing import Dict, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

__all__ = [
    "CMAP",
    "draw_adjacency",
    "draw_dag",
    "wiring_figure",
    "wiring_grid",
    "figure_to_array",
    "save_wiring",
]

CMAP = "viridis"


def _numpy(a) -> np.ndarray:
    return (
        a.detach().float().cpu().numpy()
        if isinstance(a, torch.Tensor)
        else np.asarray(a, dtype=np.float32)
    )


def draw_adjacency(ax, adjacency, title: str = "", colorbar: bool = False):
    """Heatmap of one ``[n, n]`` adjacency matrix: rows are source nodes, columns targets.
    Cells on and below the diagonal (edges that cannot exist) are left white."""
    a = _numpy(adjacency)
    n = a.shape[0]
    cmap = plt.get_cmap(CMAP).with_extremes(bad="white")
    masked = np.ma.masked_where(np.tril(np.ones((n, n), dtype=bool)), a)
    image = ax.imshow(masked, vmin=0.0, vmax=1.0, cmap=cmap, interpolation="nearest")
    ticks = range(n) if n <= 12 else range(0, n, max(1, n // 8))
    ax.set_xticks(list(ticks))
    ax.set_yticks(list(ticks))
    ax.tick_params(labelsize=6)
    ax.set_xlabel("to node", fontsize=7)
    ax.set_ylabel("from node", fontsize=7)
    if title:
        ax.set_title(title, fontsize=8)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
    return image


def draw_dag(ax, adjacency, title: str = ""):
    """The DAG of one ``[n, n]`` matrix: nodes on a line, kept edges as arcs whose width and
    colour show their weight, dropped edges dashed and grey."""
    a = _numpy(adjacency)
    n = a.shape[0]
    cmap = plt.get_cmap(CMAP)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(-0.25 * n - 0.5, 0.25 * n + 0.5)
    ax.axis("off")
    for i in range(n):
        for j in range(i + 1, n):
            w = float(a[i, j])
            bend = 0.25 + 0.08 * (j - i)
            style = dict(
                arrowstyle="-|>",
                mutation_scale=6,
                connectionstyle=f"arc3,rad={-bend if (i + j) % 2 else bend}",
            )
            if w > 0:
                patch = FancyArrowPatch(
                    (i, 0), (j, 0), color=cmap(w), linewidth=0.5 + 3.0 * w, zorder=2, **style
                )
            else:
                patch = FancyArrowPatch(
                    (i, 0), (j, 0), color="0.75", linewidth=1.0, linestyle="--", zorder=1, **style
                )
            ax.add_patch(patch)
    ax.scatter(range(n), [0] * n, s=90, c="white", edgecolors="black", zorder=3)
    for i in range(n):
        ax.text(i, 0, str(i), ha="center", va="center", fontsize=6, zorder=4)
    if title:
        ax.set_title(title, fontsize=8)


def wiring_figure(
    wiring: Dict[str, torch.Tensor],
    index: int = 0,
    title: Optional[str] = None,
    dag: bool = True,
    image: Optional[np.ndarray] = None,
):
    """Per stage, the heatmap (and, with ``dag``, the DAG drawing below it) of image ``index``;
    with ``image`` (``HxWx3`` RGB) the image itself in a first column, beside its wiring."""
    stages = list(wiring)
    rows, first = (2 if dag else 1), (1 if image is not None else 0)
    fig, axes = plt.subplots(
        rows, len(stages) + first, figsize=(2.7 * (len(stages) + first), 2.8 * rows), squeeze=False
    )
    if image is not None:
        axes[0][0].imshow(image)
        axes[0][0].set_title("image", fontsize=8)
        for row in range(rows):
            axes[row][0].axis("off")
    for column, name in enumerate(stages, start=first):
        a = wiring[name][index]
        draw_adjacency(axes[0][column], a, f"{name} (n={a.shape[0]})")
        if dag:
            draw_dag(axes[1][column], a)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _shared_colorbar(fig, axes[0][-1])
    return fig


def _shared_colorbar(fig, ax) -> None:
    mappable = ax.images[0] if ax.images else None
    if mappable is not None:
        fig.subplots_adjust(right=0.9)
        bar = fig.colorbar(mappable, cax=fig.add_axes([0.915, 0.25, 0.012, 0.5]))
        bar.set_label("edge weight (0 = dropped)", fontsize=7)
        bar.ax.tick_params(labelsize=6)


def wiring_grid(
    wiring: Dict[str, torch.Tensor],
    indices: Sequence[int],
    images: Optional[Sequence[np.ndarray]] = None,
    labels: Optional[Sequence[str]] = None,
):
    """A grid: one row per image (its picture first when ``images`` is given), one heatmap per
    stage; the same stage's column compares images side by side."""
    stages = list(wiring)
    offset = 1 if images is not None else 0
    fig, axes = plt.subplots(
        len(indices),
        len(stages) + offset,
        figsize=(2.3 * (len(stages) + offset), 2.3 * len(indices)),
        squeeze=False,
    )
    for row, index in enumerate(indices):
        if images is not None:
            axes[row][0].imshow(images[row])
            axes[row][0].axis("off")
            if labels:
                axes[row][0].set_title(labels[row], fontsize=7)
        for column, name in enumerate(stages):
            draw_adjacency(
                axes[row][column + offset], wiring[name][index], name if row == 0 else ""
            )
    fig.tight_layout()
    _shared_colorbar(fig, axes[0][-1])
    return fig


def figure_to_array(fig) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB of a figure (and closes it)."""
    fig.canvas.draw()
    array = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return array


def save_wiring(
    wiring: Dict[str, torch.Tensor], path: str, index: int = 0, title: Optional[str] = None
) -> None:
    """Save :func:`wiring_figure` of image ``index`` as a PNG."""
    fig = wiring_figure(wiring, index, title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
