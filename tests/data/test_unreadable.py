"""ExcludeUnreadable: each kind of unreadable image is excluded and named in training, and stops
evaluation with its name."""

import json

import pytest
from detectron2.data import DatasetCatalog, DatasetMapper

from ddw_detectron.data.unreadable import (
    ExcludeUnreadable,
    UnreadableImageError,
    read_exclusion_log,
)
from tests.helpers import make_cfg, register


@pytest.fixture(scope="module")
def bad_dataset(module_folder):
    planted = register("ddw_test_bad_data", module_folder("bad"))
    return {r["file_name"]: r for r in DatasetCatalog.get("ddw_test_bad_data")}, planted


def mapper(train=True):
    cfg = make_cfg(**{"INPUT.MIN_SIZE_TRAIN": (64,), "INPUT.MIN_SIZE_TEST": 64})
    return DatasetMapper(cfg, is_train=train)


@pytest.mark.parametrize("kind", ["missing", "truncated", "corrupt_png", "empty", "wrong_size"])
def test_each_unreadable_kind_is_excluded_named_and_logged(bad_dataset, kind, tmp_path, caplog):
    records, planted = bad_dataset
    log = tmp_path / "unreadable.jsonl"
    exclude = ExcludeUnreadable(mapper(), str(log))
    assert exclude(records[planted[kind]]) is None
    assert planted[kind] in caplog.text and "excluding unreadable image" in caplog.text
    logged = read_exclusion_log(str(log))
    assert list(logged) == [planted[kind]]
    expected = {
        "missing": "No such file",
        "truncated": "truncated",
        "corrupt_png": "",
        "empty": "cannot identify",
        "wrong_size": "Mismatched image shape",
    }[kind]
    assert expected in logged[planted[kind]]


def test_readable_images_pass_through_unchanged(bad_dataset, tmp_path):
    records, _ = bad_dataset
    good = [r for name, r in records.items() if "good_" in name]
    exclude = ExcludeUnreadable(mapper(False), str(tmp_path / "log.jsonl"))
    out = exclude(dict(good[0]))
    assert tuple(out["image"].shape) == (3, 64, 64) and not (tmp_path / "log.jsonl").exists()


def test_evaluation_mapper_raises_naming_the_file(bad_dataset):
    records, planted = bad_dataset
    with pytest.raises(
        UnreadableImageError, match=f"cannot read image {planted['truncated']}: OSError"
    ):
        ExcludeUnreadable(mapper(False), exclude=False)(records[planted["truncated"]])


def test_exclusion_log_ignores_a_line_cut_by_a_kill(tmp_path):
    log = tmp_path / "unreadable.jsonl"
    log.write_text(json.dumps({"file_name": "a.jpg", "reason": "r"}) + "\n" + '{"file_name": "b.j')
    assert read_exclusion_log(str(log)) == {"a.jpg": "r"}


def test_an_image_met_again_is_warned_about_and_logged_once(bad_dataset, tmp_path, caplog):
    records, planted = bad_dataset
    log = tmp_path / "unreadable.jsonl"
    first, second = ExcludeUnreadable(mapper(), str(log)), ExcludeUnreadable(mapper(), str(log))
    for exclude in (first, first, second, first):  # second: as another worker process
        assert exclude(records[planted["missing"]]) is None
    assert len(log.read_text().splitlines()) == 1
    warnings = [r for r in caplog.records if planted["missing"] in r.getMessage()]
    assert len(warnings) == 2  # once per process
