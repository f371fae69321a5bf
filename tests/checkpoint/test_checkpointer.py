import pytest
import torch
from torch import nn

from ddw_detectron.checkpoint import DDWCheckpointer, IncompleteBackboneError


class Tiny(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.backbone = nn.Linear(3, width)


def test_saves_are_atomic(tmp_path, monkeypatch):
    checkpointer = DDWCheckpointer(Tiny(), save_dir=str(tmp_path))
    checkpointer.save("model_0001")
    good = (tmp_path / "model_0001.pth").read_bytes()
    assert (tmp_path / "last_checkpoint").read_text() == "model_0001.pth"
    assert not list(tmp_path.glob("*.incomplete*"))

    def interrupted(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpointer.save("model_0002")
    assert not (tmp_path / "model_0002.pth").exists()
    assert (tmp_path / "model_0001.pth").read_bytes() == good
    assert (tmp_path / "last_checkpoint").read_text() == "model_0001.pth"


def test_interrupted_pointer_write_keeps_the_previous_pointer(tmp_path, monkeypatch):
    checkpointer = DDWCheckpointer(Tiny(), save_dir=str(tmp_path))
    checkpointer.save("model_0001")
    real_replace = __import__("os").replace

    def killed(src, dst):
        if str(dst).endswith("last_checkpoint"):
            raise KeyboardInterrupt  # the process dies between the write and the rename
        real_replace(src, dst)

    monkeypatch.setattr("ddw_detectron.checkpoint.checkpointer.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpointer.save("model_0002")
    assert (tmp_path / "model_0002.pth").exists()
    assert (tmp_path / "last_checkpoint").read_text() == "model_0001.pth"


def test_backbone_of_other_shapes_is_refused(tmp_path):
    torch.save({"model": Tiny(width=5).state_dict()}, tmp_path / "other.pth")
    with pytest.raises(
        IncompleteBackboneError,
        match=r"other.pth leaves 2 of the model's 2 backbone tensors unloaded \(2 of another "
        r"shape; e.g. backbone.weight \(\(5, 3\) in the file, \(4, 3\) here\)\)",
    ):
        DDWCheckpointer(Tiny()).load(str(tmp_path / "other.pth"))
    torch.save({"model": Tiny().state_dict()}, tmp_path / "same.pth")
    DDWCheckpointer(Tiny()).load(str(tmp_path / "same.pth"))
