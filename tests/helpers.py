"""Shared test helpers (the one module test files share): configs for each DDW family, tiny
settings, running a script, killing a run midway, a torchvision network and photographs to
compare against, planted files, generated ImageFolders, a dataset with unreadable images."""

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import numpy as np
import torch
import torchvision
from detectron2.config import get_cfg
from PIL import Image
from torch import nn

import ddw_detectron
from ddw_detectron.layers import DAGStage
from ddw_detectron.model_zoo import configs_root
from ddw_detectron.modeling import FAMILIES

ROOT = Path(__file__).resolve().parent.parent
ALL_STAGES = {name: list(family.stage_names) for name, family in FAMILIES.items()}


# Overrides that make a detection config train and evaluate in seconds on the CPU: the tiny
# shapes dataset, 2 images per batch, no learning-rate steps, every detection scored.
# fmt: off
TINY_DETECTION = [
    "DATASETS.TRAIN", "('ddw_shapes_tiny',)", "DATASETS.TEST", "('ddw_shapes_tiny',)",
    "SOLVER.IMS_PER_BATCH", "2", "SOLVER.WARMUP_ITERS", "1", "SOLVER.STEPS", "()",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",
]
# The demo pipeline at tiny sizes: R-18, a few small pretraining batches, 4 detection iterations.
TINY_PRETRAINING = [
    "MODEL.RESNETS.DEPTH", "18", "CLS.EPOCHS", "2", "CLS.BATCH_SIZE", "4", "CLS.INPUT_SIZE", "32",
    "CLS.RESIZE_SIZE", "32", "CLS.WARMUP_EPOCHS", "1",
]
TINY_DEMO_DETECTION = [
    *TINY_DETECTION, "MODEL.RESNETS.DEPTH", "18", "SOLVER.MAX_ITER", "4",
    "SOLVER.CHECKPOINT_PERIOD", "2",
]
# fmt: on


def set_key(cfg, key, value):
    *path, last = key.split(".")
    node = cfg
    for part in path:
        node = node[part]
    node[last] = value


def make_cfg(family="resnet", dynamic=True, **overrides):
    """A CPU config of a small model of ``family`` with BN (trainable) norms, no freezing."""
    cfg = get_cfg()
    ddw_detectron.add_ddw_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.REGNET.PRESET = "RegNetX-400MF"
    cfg.MODEL.DDW.DYNAMIC_STAGES = ALL_STAGES[family] if dynamic else []
    for key, value in overrides.items():
        set_key(cfg, key, value)
    return cfg


def python_command(path, *args) -> List[str]:
    """``python <path> <args>``: ``path`` relative to the repository root, arguments as text."""
    return [sys.executable, str(ROOT / path), *map(str, args)]


def _environment(env) -> dict:
    """This process's environment with the variables of ``env`` set on top (values as text)."""
    return {**os.environ, **{key: str(value) for key, value in (env or {}).items()}}


def run_python(path, *args, env=None, timeout=900, cwd=ROOT) -> subprocess.CompletedProcess:
    """Run :func:`python_command` (from the repository root, or ``cwd``) with its output
    captured; ``env``: variables set on top of this process's."""
    return subprocess.run(
        python_command(path, *args),
        capture_output=True,
        text=True,
        env=_environment(env),
        timeout=timeout,
        cwd=cwd,
    )


_HOLD = """
import sys, time
from ddw_detectron.utils.run_lock import lock_output_dir
lock_output_dir(sys.argv[1])
print("locked", flush=True)
time.sleep(600)
"""


@contextlib.contextmanager
def output_dir_held(folder):
    """Another process holds ``folder``'s run lock while in the block; yields its pid."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def run_until(command, env, marker: Path) -> None:
    """Start ``command`` (``env``: variables set on top of this process's) and SIGKILL its whole
    process group once ``marker`` exists."""
    process = subprocess.Popen(
        command,
        env=_environment(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 600
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, f"{command[1]} ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def torchvision_resnet18(classes: int) -> torch.nn.Module:
    """Random weights with non-trivial norm statistics and affine parameters."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=classes)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def photos() -> torch.Tensor:
    """Two scikit-image photographs, ``[2, 3, 96, 96]`` RGB in 0-255."""
    from skimage import data

    images = [
        Image.fromarray(getattr(data, name)()).convert("RGB").resize((96, 96))
        for name in ("astronaut", "coffee")
    ]
    return torch.stack(
        [torch.from_numpy(np.array(image)).permute(2, 0, 1).float() for image in images]
    )


# The start near the base network, as for fine-tuning from static weights
# (configs/ImageNet/DDW_R_50_from_torchvision.yaml).
NEAR_STATIC = ["MODEL.DDW.ROUTER_INIT_CHAIN", "0.99", "MODEL.DDW.ROUTER_INIT_OTHER", "0.05"]


def tiny_coco(root: Path):
    """``root/coco``: two images and annotations in the layout of coco_2017_train."""
    from PIL import Image

    (root / "coco" / "annotations").mkdir(parents=True)
    (root / "coco" / "train2017").mkdir()
    images, annotations = [], []
    for i in range(2):
        Image.new("RGB", (128, 96), (100 + 50 * i, 80, 60)).save(
            root / "coco" / "train2017" / f"{i}.jpg"
        )
        images.append({"id": i + 1, "file_name": f"{i}.jpg", "width": 128, "height": 96})
        polygon = [10.0, 10.0, 60.0, 10.0, 60.0, 70.0, 10.0, 70.0]
        annotations.append(
            {
                "id": i + 1,
                "image_id": i + 1,
                "category_id": 1,
                "bbox": [10.0, 10.0, 50.0, 60.0],
                "segmentation": [polygon],
                "area": 3000.0,
                "iscrowd": 0,
            }
        )
    from detectron2.data.datasets.builtin_meta import COCO_CATEGORIES

    categories = [{"id": c["id"], "name": c["name"]} for c in COCO_CATEGORIES if c["isthing"]]
    (root / "coco" / "annotations" / "instances_train2017.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )


# --- planted files: checkpoints and configs that run code when loaded unsafely ----------
class Payload:
    """Unpickling this calls ``os.system('touch <marker>')``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def payload_pkl(path: Path, marker: Path) -> Path:
    """A model-zoo-looking ``.pkl`` whose weights hold the payload."""
    with open(path, "wb") as f:
        pickle.dump({"model": {"stem.conv1.weight": Payload(marker)}, "__author__": "x"}, f)
    return path


def payload_pth(path: Path, marker: Path) -> Path:
    """A ``torch.save`` file holding the payload (beside real-looking weights)."""
    import torch

    torch.save({"model": {"w": torch.zeros(1)}, "extra": Payload(marker)}, path)
    return path


def payload_yaml(path: Path, marker: Path, base: str = "") -> Path:
    """A config whose only key runs the payload through a Python tag."""
    text = f'_BASE_: "{base}"\n' if base else ""
    text += f'OUTPUT_DIR: !!python/object/apply:os.system ["touch {marker}"]\n'
    path.write_text(text)
    return path


def model_zoo_pkl(path: Path) -> Path:
    """A plain Detectron2-format ``.pkl``: numpy arrays in dicts."""
    weights = {"stem.conv1.weight": np.ones((2, 3), dtype=np.float32)}
    with open(path, "wb") as f:
        pickle.dump({"model": weights, "__author__": "test", "matching_heuristics": True}, f)
    return path


# --- generated ImageFolder datasets for pretraining ---------------------------------------
COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)]
CLASSES = 3
# Pretraining overrides for a default make_image_folder folder: 8 crops of 32 pixels a batch,
# read in the main process.
# fmt: off
FOLDER_PRETRAINING = [
    "CLS.NUM_CLASSES", str(CLASSES), "CLS.BATCH_SIZE", "8", "CLS.INPUT_SIZE", "32",
    "CLS.RESIZE_SIZE", "36", "CLS.NUM_WORKERS", "0",
]
# fmt: on


def make_image_folder(
    root: Path, classes=CLASSES, train_per_class=16, val_per_class=4, size=40, seed=0
) -> Path:
    """An easy task: class k is a noisy image of colour k with a random bright square."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for k in range(classes):
            folder = root / split / f"class_{k}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                array = np.clip(
                    np.array(COLOURS[k]) + rng.normal(0, 30, size=(size, size, 3)), 0, 255
                )
                x, y = rng.integers(0, size - 10, size=2)
                array[y : y + 10, x : x + 10] = 255
                Image.fromarray(array.astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


# --- a COCO-layout dataset with one unreadable image of each kind -------------------------
SIZE = 64


def write_image(path: Path, seed: int, size=(SIZE, SIZE), fmt="JPEG") -> None:
    pixels = np.random.default_rng(seed).integers(
        0, 256, size=(size[1], size[0], 3), dtype=np.uint8
    )
    pixels[16:48, 16:48] = (250, 30, 30)
    Image.fromarray(pixels).save(path, fmt)


def write_dataset(
    root: Path,
    good: int = 10,
    defects=("missing", "truncated", "corrupt_png", "empty", "wrong_size"),
):
    """``root/images/*`` and ``root/annotations.json``: ``good`` readable images and one image
    of each kind in ``defects``. Returns ``(json path, image root, {kind: file path})``."""
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images, annotations, planted = [], [], {}
    names = [(f"good_{i:02d}.jpg", None) for i in range(good)] + [
        (f"{kind}.{'png' if 'png' in kind else 'jpg'}", kind) for kind in defects
    ]
    for index, (name, kind) in enumerate(names):
        path = images_dir / name
        if kind != "missing":
            write_image(
                path,
                index,
                size=(SIZE + 8, SIZE) if kind == "wrong_size" else (SIZE, SIZE),
                fmt="PNG" if name.endswith(".png") else "JPEG",
            )
        if kind == "truncated":
            path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        elif kind == "corrupt_png":
            data = bytearray(path.read_bytes())
            data[40:] = bytes(len(data) - 40)
            path.write_bytes(bytes(data))
        elif kind == "empty":
            path.write_bytes(b"")
        if kind:
            planted[kind] = str(path)
        images.append({"id": index + 1, "file_name": name, "width": SIZE, "height": SIZE})
        annotations.append(
            {
                "id": index + 1,
                "image_id": index + 1,
                "category_id": 1,
                "bbox": [16, 16, 32, 32],
                "area": 1024,
                "iscrowd": 0,
            }
        )
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "box"}]}
    json_path = root / "annotations.json"
    json_path.write_text(json.dumps(coco))
    return json_path, images_dir, planted


def register(name: str, root: Path, **kwargs):
    """Write and register the dataset ``name`` in Detectron2's catalogs (once per name)."""
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_instances

    json_path, images_dir, planted = write_dataset(root, **kwargs)
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        from detectron2.data import MetadataCatalog

        MetadataCatalog.remove(name)
    register_coco_instances(name, {}, str(json_path), str(images_dir))
    return planted


# --- a small DAG stage of residual conv nodes (the layers' tests) -------------------------
C = 8


class Block(nn.Module):
    """A small residual node; ``stride``/``in_channels`` let it serve as node 0."""

    def __init__(self, in_channels=C, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, C, 3, stride, 1)
        self.conv2 = nn.Conv2d(C, C, 3, 1, 1)
        self.shortcut = (
            nn.Conv2d(in_channels, C, 1, stride) if (in_channels != C or stride > 1) else None
        )
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out = self.conv2(torch.relu(self.conv1(x)))
        return torch.relu(out + (self.shortcut(x) if self.shortcut is not None else x))


def make_stage(n=4, seed=0, **kwargs):
    """A stage of ``n`` small blocks; by default the bare complete-DAG operator (threshold 0, no
    node skipping: every edge computed), which the tests compare with hand-written sums."""
    kwargs = {"threshold": 0.0, "skip_unused_nodes": False, **kwargs}
    torch.manual_seed(seed)
    nodes = [Block(3, stride=2)] + [Block() for _ in range(n - 1)]
    return DAGStage(nodes, C, **kwargs)


# The shipped configs through the library (the clone's configs/, or the installed package's).
CONFIGS = configs_root()


def build(family, cfg):
    """The bottom-up DDW backbone of ``family`` from ``cfg`` (its registered builder)."""
    from detectron2.layers import ShapeSpec
    from detectron2.modeling import BACKBONE_REGISTRY

    return BACKBONE_REGISTRY.get(f"build_ddw_{family}_backbone")(cfg, ShapeSpec(channels=3))


def force_wiring(stage, edges_on):
    """Routers output exactly 1 for edges in ``edges_on`` and exactly 0 for the others."""
    n = len(stage)
    with torch.no_grad():
        for i, router in enumerate(stage.routers):
            router.fc.weight.zero_()
            for offset, j in enumerate(range(i + 1, n)):
                router.fc.bias[offset] = 40.0 if (i, j) in edges_on else -40.0
