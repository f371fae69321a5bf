"""Two machines, on one host over gloo: ``train_net.py --num-machines 2 --machine-rank 0/1``
and ``torchrun --nnodes 2`` for pretraining, started side by side, train together and end
with the same weights."""

import socket
import subprocess
import sys

import pytest

from tests.helpers import (
    FOLDER_PRETRAINING,
    ROOT,
    TINY_DETECTION,
    _environment,
    make_image_folder,
    python_command,
)

pytestmark = pytest.mark.long(90)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_both(commands, env):
    """Start both machines' commands at once; return their completed processes."""
    processes = [
        subprocess.Popen(c, env=_environment({"OMP_NUM_THREADS": "1", **env}), cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for c in commands
    ]  # fmt: skip
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    return [(p.returncode, out) for p, out in zip(processes, outputs)]


def test_detection_on_two_machines(cache, tmp_path):
    url = f"tcp://127.0.0.1:{free_port()}"
    config = ROOT / "configs" / "Demo" / "faster_rcnn_DDW_R_18_FPN_shapes.yaml"
    commands = [
        python_command(
            "scripts/train_net.py", "--config-file", config, "--num-gpus", "1",
            "--num-machines", "2", "--machine-rank", rank, "--dist-url", url, *TINY_DETECTION,
            "SOLVER.MAX_ITER", "2", "MODEL.DEVICE", "cpu", "OUTPUT_DIR", tmp_path / f"m{rank}",
        )
        for rank in ("0", "1")
    ]  # fmt: skip
    (code0, out0), (code1, out1) = run_both(commands, {"DDW_DATASETS_CACHE": cache})
    assert code0 == 0 and code1 == 0, out0[-3000:] + out1[-3000:]
    assert "weights identical across 2 processes" in out0


def test_pretraining_on_two_nodes_with_torchrun(tmp_path):
    data = make_image_folder(tmp_path / "data")
    port = str(free_port())
    config = ROOT / "configs" / "ImageNet" / "DDW_R_18.yaml"
    commands = [
        [
            sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", rank,
            "--master_addr", "127.0.0.1", "--master_port", port, "--nproc_per_node", "1",
            str(ROOT / "scripts" / "pretrain_imagenet.py"), "--config-file", str(config),
            "CLS.DATA_ROOT", str(data), *FOLDER_PRETRAINING, "CLS.EPOCHS", "1",
            "CLS.BATCH_SIZE", "4", "OUTPUT_DIR", str(tmp_path / f"n{rank}"),
        ]
        for rank in ("0", "1")
    ]  # fmt: skip
    (code0, out0), (code1, out1) = run_both(commands, {})
    assert code0 == 0 and code1 == 0, out0[-3000:] + out1[-3000:]
    assert "weights identical across 2 processes" in out0 + out1
