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


def zero_the_middle(path, count=4096):
    """Zero ``count`` bytes at the middle of ``path``, its size unchanged."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + count] = bytes(count)
    path.write_bytes(bytes(data))


def test_bytes_damaged_in_the_middle_are_refused_naming_the_entry(tmp_path):
    from torch import nn

    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(1024, 1024))  # the middle: in a tensor
    path = tmp_path / "model_final.pth"
    torch.save({"model": model.state_dict(), "iteration": 9}, path)
    assert load_torch_file(str(path))["iteration"] == 9  # intact: loads
    size = path.stat().st_size
    zero_the_middle(path)
    assert path.stat().st_size == size
    # torch.load itself reads the damaged file without a word:
    assert torch.load(path, weights_only=True)["iteration"] == 9
    with pytest.raises(CheckpointReadError, match=r"model_final.pth: entry .*/data/\d+ is damaged"):
        load_torch_file(str(path))


@pytest.mark.parametrize("protocol", [2, 4])
def test_model_zoo_pickles_of_each_protocol_load(tmp_path, protocol):
    import pickle

    weights = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.int64(3), "b": b"\x00x"}
    path = tmp_path / "zoo.pkl"
    path.write_bytes(pickle.dumps({"model": weights, "__author__": "x"}, protocol=protocol))
    loaded = load_pickle_file(str(path))["model"]
    assert np.array_equal(loaded["w"], weights["w"]) and loaded["b"] == b"\x00x"


def test_only_exact_numpy_names_are_admitted(tmp_path):
    # A protocol-4 pickle naming a dotted numpy attribute that merely ends in "dtype".
    def short_unicode(text: bytes) -> bytes:
        return b"\x8c" + bytes([len(text)]) + text

    # PROTO 4, the module and name as strings, STACK_GLOBAL, STOP.
    payload = b"\x80\x04" + short_unicode(b"numpy") + short_unicode(b"lib.npyio.easy_dtype")
    payload += b"\x93."
    path = tmp_path / "dotted.pkl"
    path.write_bytes(payload)
    with pytest.raises(UnsafeFileError, match=r"numpy.lib.npyio.easy_dtype"):
        load_pickle_file(str(path))
