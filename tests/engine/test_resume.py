"""kill -9 at any moment of detection training (scripts/train_net.py): during an iteration,
during a checkpoint write and during the evaluation; ``--resume`` then ends with the weights
of an uninterrupted run. And a checkpoint write that fails (a full disk) keeps the previous one."""

import errno
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import ROOT, TINY_DETECTION, python_command, run_python

pytestmark = pytest.mark.long(50)

DEMO = ROOT / "configs" / "Demo" / "faster_rcnn_DDW_R_18_FPN_shapes.yaml"
# TINY_DETECTION with a seed, data read in the main process, a learning-rate step and
# 96-pixel images.
# fmt: off
DETERMINISTIC = [
    *TINY_DETECTION, "SEED", "0", "DATALOADER.NUM_WORKERS", "0", "SOLVER.MAX_ITER", "6",
    "SOLVER.CHECKPOINT_PERIOD", "2", "SOLVER.STEPS", "(4,)", "INPUT.MIN_SIZE_TRAIN", "(96,)",
    "INPUT.MAX_SIZE_TRAIN", "96", "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "96",
]
# fmt: on


@pytest.fixture(scope="module")
def cache(module_folder):
    return module_folder("datasets")


def train_args(output: Path, resume=False):
    resume_flag = ["--resume"] if resume else []
    return ["--config-file", DEMO, *resume_flag, *DETERMINISTIC, "OUTPUT_DIR", output]


def run(cache, output, resume=False):
    result = run_python(
        "scripts/train_net.py",
        *train_args(output, resume),
        env={"DDW_DATASETS_CACHE": cache},
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def kill_when(cache, output, ready, timeout=300):
    """Start training; SIGKILL it as soon as ``ready()`` is true."""
    process = subprocess.Popen(
        python_command("scripts/train_net.py", *train_args(output)),
        env={**os.environ, "DDW_DATASETS_CACHE": str(cache)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + timeout
    while not ready() and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def reference(cache, module_folder):
    output = module_folder("uninterrupted")
    run(cache, output)
    return torch.load(output / "model_final.pth", weights_only=False)["model"]


def assert_same_weights(output, reference):
    final = torch.load(output / "model_final.pth", weights_only=False)["model"]
    assert final.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(torch.as_tensor(final[key]), torch.as_tensor(value)), key


def log_text(output):
    path = output / "log.txt"
    return path.read_text() if path.exists() else ""


def test_kill_during_an_iteration(cache, tmp_path, reference):
    kill_when(cache, tmp_path, lambda: (tmp_path / "last_checkpoint").exists())
    assert not (tmp_path / "model_final.pth").exists()
    resumed = run(cache, tmp_path, resume=True)
    # stdout: Detectron2's main branch buffers log.txt, so the file may lag behind.
    assert "Loading from " + str(tmp_path / "model_0000001.pth") in resumed.stdout
    assert_same_weights(tmp_path, reference)


def test_kill_during_a_checkpoint_write(cache, tmp_path, reference):
    # The write of model_0000003 goes into a FIFO: it blocks there until we read, so the kill
    # lands in the middle of writing that checkpoint.
    tmp_path.mkdir(exist_ok=True)
    fifo = tmp_path / "model_0000003.incomplete.pth"
    os.mkfifo(fifo)
    received = []

    def writing():
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return False
        time.sleep(0.5)
        received.append(len(os.read(fd, 1 << 16)))
        os.close(fd)
        return received[-1] > 0

    kill_when(cache, tmp_path, writing)
    assert (
        received[-1] > 0
        and (tmp_path / "last_checkpoint").read_text().strip() == "model_0000001.pth"
    )
    os.remove(fifo)
    run(cache, tmp_path, resume=True)
    assert_same_weights(tmp_path, reference)


def test_kill_during_the_evaluation(cache, tmp_path, reference):
    kill_when(cache, tmp_path, lambda: "Start inference" in log_text(tmp_path))
    assert (tmp_path / "model_final.pth").exists() and not (
        tmp_path / "final_results.json"
    ).exists()
    result = run(cache, tmp_path, resume=True)
    assert (tmp_path / "final_results.json").exists() and "box AP" in result.stdout
    assert_same_weights(tmp_path, reference)


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from ddw_detectron.engine import CheckpointWriteError, DDWCheckpointer

    model = torch.nn.Linear(2, 2)
    checkpointer = DDWCheckpointer(model, str(tmp_path))
    checkpointer.save("model_0000001", iteration=1)
    before = (tmp_path / "model_0000001.pth").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(
        CheckpointWriteError,
        match=r"could not write checkpoint model_0000003.pth .*\(the disk holding .* is full\)"
        r".*model_0000001.pth and last_checkpoint are intact",
    ):
        checkpointer.save("model_0000003", iteration=3)
    assert (tmp_path / "model_0000001.pth").read_bytes() == before
    assert (tmp_path / "last_checkpoint").read_text().strip() == "model_0000001.pth"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000001.pth"]
