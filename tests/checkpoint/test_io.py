import numpy as np
import pytest
import torch

from ddw_detectron.checkpoint import CheckpointReadError, UnsafeFileError
from ddw_detectron.checkpoint.io import load_checkpoint_file, load_pickle_file, load_torch_file
from tests.helpers import model_zoo_pkl, payload_pkl, payload_pth


def test_a_pickle_payload_is_refused_naming_the_file_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    path = payload_pkl(tmp_path / "R-50.pkl", marker)
    with pytest.raises(UnsafeFileError, match=r"R-50.pkl is refused: .* posix.system"):
        load_pickle_file(str(path))
    assert not marker.exists()


def test_a_torch_payload_is_refused_naming_the_file_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    path = payload_pth(tmp_path / "weights.pth", marker)
    with pytest.raises(UnsafeFileError, match=r"weights.pth is refused: .* posix.system"):
        load_torch_file(str(path))
    assert not marker.exists()


def test_model_zoo_pickles_and_weights_load(tmp_path):
    data = load_checkpoint_file(str(model_zoo_pkl(tmp_path / "zoo.pkl")))
    assert isinstance(data["model"]["stem.conv1.weight"], np.ndarray)
    torch.save({"model": {"w": torch.ones(2)}}, tmp_path / "w.pth")
    assert torch.equal(load_checkpoint_file(str(tmp_path / "w.pth"))["model"]["w"], torch.ones(2))


@pytest.mark.parametrize(
    "name, content",
    [
        ("empty.pth", b""),
        ("noise.pth", b"not a checkpoint at all"),
        ("cut.pth", None),  # a real checkpoint cut in half
        ("empty.pkl", b""),
        ("noise.pkl", b"\x80\x04garbage"),
    ],
)
def test_unreadable_files_are_named(tmp_path, name, content):
    path = tmp_path / name
    if content is None:
        torch.save({"model": {"w": torch.randn(1000)}}, path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointReadError, match=f"cannot read checkpoint {path}"):
        load_checkpoint_file(str(path))


def test_a_missing_file_is_named(tmp_path):
    for name in ("none.pth", "none.pkl"):
        with pytest.raises(CheckpointReadError, match=f"checkpoint {tmp_path / name} does not"):
            load_checkpoint_file(str(tmp_path / name))
