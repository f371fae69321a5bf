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


def ddw_r18(chain: float):
    from ddw_detectron.checkpoint.facts import model_facts
    from tests.helpers import build, make_cfg

    cfg = make_cfg("resnet", **{"MODEL.DDW.ROUTER_INIT_CHAIN": chain})
    torch.manual_seed(0)
    model = nn.Module()
    model.backbone = build("resnet", cfg)
    return model, model_facts(cfg)


@pytest.mark.parametrize("chain", [0.0, 0.99])
def test_static_weights_without_facts_or_routers_are_loaded_with_warnings(tmp_path, caplog, chain):
    model, facts = ddw_r18(chain)
    static = {k: v for k, v in model.state_dict().items() if ".routers." not in k}
    torch.save({"model": static}, tmp_path / "static.pth")
    checkpointer = DDWCheckpointer(model, facts=facts)
    with caplog.at_level("WARNING"):
        checkpointer.load(str(tmp_path / "static.pth"))
    text = caplog.text
    assert f"{tmp_path / 'static.pth'} carries no facts record" in text
    random_routers = "has no router weights and the model's" in text
    assert random_routers == (chain == 0.0)
    if random_routers:
        assert "set MODEL.DDW.ROUTER_INIT_CHAIN 0.99" in text


def test_weights_with_facts_and_routers_load_without_a_warning(tmp_path, caplog):
    model, facts = ddw_r18(0.0)
    DDWCheckpointer(model, save_dir=str(tmp_path), facts=facts).save("full")
    with caplog.at_level("WARNING"):
        DDWCheckpointer(model, facts=facts).load(str(tmp_path / "full.pth"))
    assert "no facts record" not in caplog.text and "no router weights" not in caplog.text
