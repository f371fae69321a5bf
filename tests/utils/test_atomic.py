"""Atomic writes, and a real full disk (``small_disk``: a tmpfs mounted for the test)."""

import errno
import os

import pytest
import torch
from torch import nn

from ddw_detectron.utils.atomic import WriteError, atomic_save, atomic_write_text


def test_atomic_write_replaces_the_whole_file(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(str(path), "one")
    atomic_write_text(str(path), "two")
    assert path.read_text() == "two" and os.listdir(tmp_path) == ["a.txt"]


def test_atomic_write_makes_a_missing_folder(tmp_path):
    path = tmp_path / "output" / "benchmark.json"  # as `make bench` on a fresh clone
    atomic_write_text(str(path), "{}")
    assert path.read_text() == "{}" and os.listdir(path.parent) == ["benchmark.json"]


def test_a_full_disk_keeps_the_previous_file_and_leaves_no_partial_one(small_disk):
    path = small_disk / "weights.pth"
    atomic_save({"w": torch.zeros(256 * 1024)}, str(path))  # 1 MiB
    before = path.read_bytes()
    with pytest.raises(
        WriteError, match=f"could not write {path}: the disk holding {small_disk} is full$"
    ):
        atomic_save({"w": torch.zeros(3 * 256 * 1024)}, str(path))  # 3 MiB: no room
    assert path.read_bytes() == before
    assert os.listdir(small_disk) == ["weights.pth"]


def test_the_checkpointer_on_a_full_disk_names_the_intact_previous_checkpoint(small_disk):
    from ddw_detectron.checkpoint import CheckpointWriteError, DDWCheckpointer

    model = nn.Sequential(nn.Linear(512, 512))  # 1 MiB of weights
    checkpointer = DDWCheckpointer(model, save_dir=str(small_disk))
    checkpointer.save("model_0001")
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model.add_module("more", nn.Linear(512, 1024))  # 3 MiB: does not fit beside the first
    with pytest.raises(
        CheckpointWriteError,
        match=f"the disk holding {small_disk} is full.*model_0001.pth and last_checkpoint are",
    ):
        checkpointer.save("model_0002")
    assert sorted(os.listdir(small_disk)) == ["last_checkpoint", "model_0001.pth"]
    assert (small_disk / "last_checkpoint").read_text() == "model_0001.pth"


def test_a_failure_with_room_left_keeps_its_own_words(tmp_path):
    from ddw_detectron.utils.atomic import write_failure_cause

    path = str(tmp_path / "x.pth")
    assert write_failure_cause(RuntimeError("basic_ios::clear"), path) == "basic_ios::clear"
    no_space = OSError(errno.ENOSPC, "No space left on device")
    assert write_failure_cause(no_space, path) == f"the disk holding {tmp_path} is full"
