import pytest

from ddw_detectron.utils.collapse import CollapseMonitor, RunCollapsed


def scalars(res4, res5=0.0):
    return {
        "ddw/res4/disconnected": res4,
        "ddw/res4/kept": 0.5,
        "ddw/res5/disconnected": res5,
    }


def test_stops_after_patience_checks_in_a_row_and_names_the_stage():
    monitor = CollapseMonitor(share=0.5, patience=3)
    monitor.check(scalars(0.6), "step 1")
    monitor.check(scalars(0.7), "step 2")
    with pytest.raises(RunCollapsed, match=r"at step 3: the output of stage res4 for 80%"):
        monitor.check(scalars(0.8), "step 3")


def test_a_recovery_resets_the_streak():
    monitor = CollapseMonitor(share=0.5, patience=2)
    for share in (0.6, 0.4, 0.6, 0.4, 0.9, 0.1):
        monitor.check(scalars(share), "step")
    with pytest.raises(RunCollapsed, match="res5 for 100%"):
        monitor.check(scalars(0.0, res5=1.0), "step")
        monitor.check(scalars(0.0, res5=1.0), "step")


def test_under_the_share_never_stops():
    monitor = CollapseMonitor(share=0.5, patience=1)
    for _ in range(20):
        monitor.check(scalars(0.49, res5=0.3), "step")


@pytest.mark.parametrize(
    "share, patience, match",
    [(1.5, 10, "COLLAPSE_SHARE = 1.5"), (-0.1, 10, "COLLAPSE_SHARE"), (0.5, 0, "PATIENCE = 0")],
)
def test_bad_settings_name_the_key(share, patience, match):
    with pytest.raises(ValueError, match=match):
        CollapseMonitor(share, patience)


def test_from_config():
    from tests.helpers import make_cfg

    cfg = make_cfg("resnet")
    monitor = CollapseMonitor.from_config(cfg)
    assert (monitor.share, monitor.patience) == (0.5, 10)
    cfg.MODEL.DDW.COLLAPSE_SHARE = 0.0
    assert CollapseMonitor.from_config(cfg) is None
    cfg.MODEL.DDW.COLLAPSE_SHARE = 0.5
    cfg.MODEL.DDW.DYNAMIC_STAGES = []
    assert CollapseMonitor.from_config(cfg) is None
