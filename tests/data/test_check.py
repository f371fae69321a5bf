"""The dataset checker finds one planted defect of each kind and passes a clean dataset."""

import json
from pathlib import Path

import pytest

from ddw_detectron.data.check import (
    BLOCKING,
    DatasetCheckError,
    check_coco,
    check_training_datasets,
)
from tests.helpers import register, run_python, tiny_coco, write_dataset


def plant_annotation_defects(json_path: Path) -> None:
    coco = json.loads(json_path.read_text())
    a = coco["annotations"]
    a[0]["category_id"] = 7  # unknown category
    a[1]["bbox"] = [10, 10, 0, 12]  # degenerate
    a[2]["bbox"] = [50, 50, 40, 40]  # leaves the 64x64 image
    a[4]["id"] = a[3]["id"]  # duplicate annotation id
    coco["images"][6]["id"] = coco["images"][5]["id"]  # duplicate image id
    a[6]["image_id"] = 999
    coco["annotations"] = [
        x for x in a if x["image_id"] != coco["images"][7]["id"]
    ]  # image 8: no annotation
    json_path.write_text(json.dumps(coco))


def test_clean_dataset_passes(tmp_path):
    json_path, root, _ = write_dataset(tmp_path, defects=())
    report = check_coco(str(json_path), str(root), progress=False)
    assert report.problems == [] and report.to_json()["ok"]


def test_every_planted_defect_is_found(tmp_path):
    json_path, root, planted = write_dataset(tmp_path)
    plant_annotation_defects(json_path)
    quick = check_coco(str(json_path), str(root), progress=False)
    counts = quick.counts()
    assert counts["missing_file"] == 1 and counts["size_mismatch"] == 1
    assert (
        counts["unreadable_image"] == 2
    )  # the empty file and the corrupt PNG; a truncated JPEG's header reads
    assert (
        counts["unknown_category"] == 1
        and counts["degenerate_box"] == 1
        and counts["box_outside_image"] == 1
    )
    assert (
        counts["duplicate_image_id"] == 1
        and counts["duplicate_annotation_id"] == 1
        and counts["no_annotations"] >= 1
    )
    full = check_coco(str(json_path), str(root), full_decode=True, progress=False)
    unreadable = {p.file_name for p in full.problems if p.kind == "unreadable_image"}
    assert unreadable == {planted["truncated"], planted["empty"], planted["corrupt_png"]}
    assert {p.file_name for p in quick.problems if p.kind == "missing_file"} == {planted["missing"]}


def test_command_line_writes_report_and_exit_status(tmp_path):
    json_path, root, _ = write_dataset(tmp_path / "bad")
    report_path = tmp_path / "report.json"
    script = "scripts/check_dataset.py"
    args = ["--json", json_path, "--image-root", root]
    result = run_python(script, *args, "--report", report_path)
    assert result.returncode == 1, result.stderr
    assert "| missing_file" in result.stdout and "problems would break training" in result.stdout
    report = json.loads(report_path.read_text())
    assert report["ok"] is False and set(report["counts"]) >= set(BLOCKING)
    clean_json, clean_root, _ = write_dataset(tmp_path / "clean", defects=())
    clean = run_python(script, "--json", clean_json, "--image-root", clean_root)
    assert clean.returncode == 0 and "no problem that would break training" in clean.stdout


def test_quick_check_before_training_stops_on_errors(tmp_path):
    register("ddw_test_check_train", tmp_path)
    with pytest.raises(DatasetCheckError, match="missing_file .* 1"):
        check_training_datasets(["ddw_test_check_train"], progress=False)


@pytest.mark.parametrize("box", [[float("nan"), 10, 20, 20], [10, 10, float("inf"), 5], None])
def test_boxes_that_are_not_four_finite_numbers_are_found(tmp_path, box):
    json_path, root, _ = write_dataset(tmp_path, defects=())
    coco = json.loads(json_path.read_text())
    if box is None:
        del coco["annotations"][0]["bbox"]
    else:
        coco["annotations"][0]["bbox"] = box
    json_path.write_text(json.dumps(coco))  # NaN and Infinity as JSON allows them
    report = check_coco(str(json_path), str(root), progress=False)
    assert [p.kind for p in report.blocking] == ["bad_box"]
    assert "is not four finite numbers" in report.blocking[0].detail


def test_a_malformed_json_is_named_by_the_checker_and_before_training(tmp_path):
    json_path = tmp_path / "annotations.json"
    json_path.write_text('{"images": [')
    result = run_python("scripts/check_dataset.py", "--json", json_path, "--image-root", tmp_path)
    assert result.returncode == 2
    assert f"check_dataset: error: annotation file {json_path} is not valid JSON" in result.stderr
    tiny_coco(tmp_path / "datasets")
    broken = tmp_path / "datasets" / "coco" / "annotations" / "instances_train2017.json"
    broken.write_text("[1, 2")
    result = run_python(
        "scripts/train_net.py", "--check-dataset", "--config-file",
        "configs/Demo/faster_rcnn_DDW_R_18_FPN_shapes.yaml", "DATASETS.TRAIN",
        "('coco_2017_train',)", "OUTPUT_DIR", tmp_path / "out",
        env={"DETECTRON2_DATASETS": tmp_path / "datasets"},
    )  # fmt: skip
    assert result.returncode != 0
    assert f"train_net: error: annotation file {broken} is not valid JSON" in result.stderr


def test_count_unusable_boxes_by_hand():
    from detectron2.structures import BoxMode

    from ddw_detectron.data.check import count_unusable_boxes

    def box(bbox, mode=BoxMode.XYWH_ABS, crowd=0):
        return {"bbox": bbox, "bbox_mode": mode, "category_id": 0, "iscrowd": crowd}

    records = [
        {"annotations": [box([0, 0, 5, 5]), box([1, 1, float("nan"), 4])]},
        {"annotations": [box([4, 4, 2, 8], BoxMode.XYXY_ABS), box([0, 0, 3, -2])]},
        {"annotations": [box([0, 0, 0, 0], crowd=1), box([2, 2, 4, 4], BoxMode.XYXY_ABS)]},
        {"annotations": [box(None)]},
        {},
    ]
    # Unusable: NaN, XYXY with x1 < x0, a negative height, a missing box. The crowd box is not
    # trained on; XYXY [2, 2, 4, 4] is 2 x 2, usable.
    assert count_unusable_boxes(records) == (4, 3)
