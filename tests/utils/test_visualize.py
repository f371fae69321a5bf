import json
import re

import matplotlib.pyplot as plt
import numpy as np
import torch

from ddw_detectron.utils.visualize import (
    CMAP,
    draw_adjacency,
    draw_dag,
    figure_to_array,
    save_wiring,
    wiring_grid,
)
from tests.helpers import ROOT, run_python


def pixel_at(fig, ax, x, y):
    fig.canvas.draw()
    array = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    px, py = ax.transData.transform((x, y))
    return array[int(round(array.shape[0] - py)), int(round(px))].astype(int)


def test_heatmap_has_known_colours_at_known_places():
    a = torch.zeros(3, 3)
    a[0, 1], a[0, 2], a[1, 2] = 1.0, 0.5, 0.25
    fig, ax = plt.subplots(figsize=(3, 3), dpi=100)
    draw_adjacency(ax, a)
    cmap = plt.get_cmap(CMAP)
    white = np.array([255, 255, 255])
    for (i, j), value in {
        (0, 1): 1.0,
        (0, 2): 0.5,
        (1, 2): 0.25,
        (1, 0): None,
        (2, 2): None,
    }.items():
        expected = (
            white if value is None else (np.asarray(cmap(value)[:3]) * 255).round().astype(int)
        )
        got = pixel_at(fig, ax, j, i)  # column j is x, row i is y
        assert np.abs(got - expected).max() <= 3, ((i, j), got, expected)
    plt.close(fig)


def test_dag_drawing_shows_kept_and_dropped_edges():
    blank_fig, blank_ax = plt.subplots(figsize=(3, 2), dpi=100)
    blank_ax.axis("off")
    blank = figure_to_array(blank_fig)
    a = torch.zeros(4, 4)
    a[0, 1], a[1, 2], a[2, 3] = 1.0, 1.0, 1.0
    fig, ax = plt.subplots(figsize=(3, 2), dpi=100)
    draw_dag(ax, a)
    drawn = figure_to_array(fig)
    assert (np.abs(drawn.astype(int) - blank.astype(int)).sum(-1) > 30).mean() > 0.01
    grey = (np.abs(drawn.astype(int) - 191).max(-1) <= 6).sum()
    kept_colour = (np.asarray(plt.get_cmap(CMAP)(1.0)[:3]) * 255).round().astype(int)
    assert grey > 20, "dropped edges are drawn dashed in grey"
    assert (np.abs(drawn.astype(int) - kept_colour).max(-1) <= 10).sum() > 20, (
        "kept edges in the colour of their weight"
    )


def test_saved_pictures_are_not_blank(tmp_path):
    wiring = {"res2": torch.rand(2, 3, 3).triu(1), "res3": torch.rand(2, 4, 4).triu(1)}
    save_wiring(wiring, str(tmp_path / "one.png"), index=1, title="image 1")
    image = plt.imread(tmp_path / "one.png")
    assert image.shape[0] > 200 and image[..., :3].std() > 0.05
    grid = figure_to_array(
        wiring_grid(wiring, [0, 1], images=[np.zeros((8, 8, 3), np.uint8)] * 2, labels=["a", "b"])
    )
    assert grid.shape[0] > 300 and grid.std() > 10


def test_visualize_wiring_script(tmp_path):
    env = {"DDW_DATASETS_CACHE": tmp_path / "cache"}
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "notes.txt").write_text("not an image")
    from PIL import Image

    Image.new("RGB", (120, 90), (30, 90, 200)).save(inputs / "blue.png")
    config = ROOT / "configs" / "Demo" / "faster_rcnn_DDW_R_18_FPN_shapes.yaml"
    script = "scripts/visualize_wiring.py"
    result = run_python(
        script,
        "--config-file",
        config,
        "--dataset",
        "ddw_shapes_tiny",
        "--input",
        inputs,
        "--output",
        tmp_path / "out",
        "--per-image",
        "2",
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"excluding {inputs / 'notes.txt'}: not a readable image" in result.stderr
    out = tmp_path / "out"
    assert json.loads((out / "statistics.json").read_text())["num_images"] == 9
    shown = re.findall(r"<img src='([^']+)'>", (out / "index.html").read_text())
    assert {"grid.png", "edge_mean_and_spread.png", "embedding.png"} <= set(shown)
    assert all((out / name).is_file() for name in shown), shown
    assert len(list((out / "images").glob("*.png"))) == 2
    assert "res4: 2 nodes" in result.stdout and "9 images" in result.stdout

    static = run_python(
        script,
        "--config-file",
        config,
        "--input",
        inputs,
        "--output",
        tmp_path / "o2",
        "--opts",
        "MODEL.DDW.DYNAMIC_STAGES",
        "[]",
        env=env,
        timeout=600,
    )
    assert static.returncode != 0 and "the model has no DDW stages" in static.stderr
