import warnings

import pytest
import torch
from detectron2.modeling import build_backbone

from ddw_detectron.checkpoint.facts import mismatches
from ddw_detectron.config import load_config
from ddw_detectron.layers import SharedRouter, dag_stages
from ddw_detectron.model_zoo import get_config_file
from ddw_detectron.utils.renamed_keys import RENAMED_KEYS
from tests.helpers import make_cfg


def _future(record):
    return [w for w in record if issubclass(w.category, FutureWarning)]


def _config(tmp_path, text):
    path = tmp_path / "old.yaml"
    path.write_text(f'_BASE_: "{get_config_file("Base-DDW-RCNN-FPN.yaml")}"\n{text}')
    return str(path)


@pytest.mark.parametrize("where", ["file", "override"])
def test_a_renamed_key_loads_into_its_new_name_with_one_warning(tmp_path, where):
    file_text = "TEST:\n  SKIP_UNREADABLE_IMAGES: true\n" if where == "file" else ""
    opts = ["TEST.SKIP_UNREADABLE_IMAGES", "True"] if where == "override" else []
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cfg = load_config(_config(tmp_path, file_text), opts)
    (warning,) = _future(record)
    assert "TEST.SKIP_UNREADABLE_IMAGES is renamed TEST.EXCLUDE_UNREADABLE_IMAGES" in str(
        warning.message
    )
    assert cfg.TEST.EXCLUDE_UNREADABLE_IMAGES is True
    assert "SKIP_UNREADABLE_IMAGES" not in cfg.TEST  # the dumped config has the new name only
    assert "SKIP_UNREADABLE_IMAGES" not in cfg.dump()


def test_a_current_config_loads_without_warning(tmp_path):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cfg = load_config(_config(tmp_path, "TEST:\n  EXCLUDE_UNREADABLE_IMAGES: true\n"))
    assert not _future(record)
    assert cfg.TEST.EXCLUDE_UNREADABLE_IMAGES is True


def test_an_old_key_merged_past_load_config_is_refused_by_name():
    cfg = make_cfg()  # get_cfg() + add_ddw_config, merged without load_config
    cfg.merge_from_list(["TEST.SKIP_UNREADABLE_IMAGES", "True"])
    cfg.MODEL.BACKBONE.NAME = "build_ddw_resnet_backbone"
    with pytest.raises(ValueError, match="TEST.SKIP_UNREADABLE_IMAGES is renamed TEST.EXCLUDE"):
        build_backbone(cfg)
    assert set(RENAMED_KEYS) == {"TEST.SKIP_UNREADABLE_IMAGES"}


def test_the_old_router_mode_builds_shared_routers_with_one_warning(monkeypatch):
    from ddw_detectron.layers import router

    monkeypatch.setattr(router, "_warned", set())
    cfg = make_cfg(**{"MODEL.DDW.ROUTER_MODE": "static"})
    cfg.MODEL.BACKBONE.NAME = "build_ddw_resnet_backbone"
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        backbone = build_backbone(cfg)
    (warning,) = _future(record)
    assert "router mode 'static' is renamed 'shared'" in str(warning.message)
    routers = [r for stage in dag_stages(backbone).values() for r in stage.routers]
    assert routers and all(isinstance(r, SharedRouter) for r in routers)
    assert all(s.router_mode == "shared" for s in dag_stages(backbone).values())
    # Weights saved under the old name fit a config of the new one, and nothing else changes.
    theirs = {"MODEL.DDW.ROUTER_MODE": "static", "MODEL.DDW.DYNAMIC_STAGES": ["res5"]}
    assert mismatches(theirs, {"MODEL.DDW.ROUTER_MODE": "shared"}) == []
    assert mismatches(theirs, {"MODEL.DDW.ROUTER_MODE": "dynamic"})


def test_old_python_names_warn_and_still_work():
    from ddw_detectron import layers

    stage_model = torch.nn.Sequential(
        layers.DAGStage([torch.nn.Conv2d(3, 4, 1), torch.nn.Conv2d(4, 4, 1)], 4)
    )
    with pytest.warns(FutureWarning, match="named_stages is renamed dag_stages"):
        assert list(layers.named_stages(stage_model)) == list(dag_stages(stage_model))
    with pytest.warns(FutureWarning, match="StaticRouter is renamed SharedRouter"):
        assert layers.StaticRouter is SharedRouter
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        layers.Nothing  # noqa: B018
    from ddw_detectron import engine

    with pytest.warns(FutureWarning, match="SkippedImagesHook is renamed UnreadableImagesHook"):
        assert engine.SkippedImagesHook is engine.UnreadableImagesHook
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        engine.Nothing  # noqa: B018
