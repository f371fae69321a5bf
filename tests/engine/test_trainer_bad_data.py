"""DDWTrainer on a dataset with unreadable images: training excludes, names and counts them and
stops past the configured share; evaluation names them, or leaves them out when asked."""

import json
from pathlib import Path

import pytest

from ddw_detectron.config import load_config
from ddw_detectron.data.unreadable import UnreadableImageError
from ddw_detectron.engine import DDWTrainer
from tests.helpers import register

DEMO = (
    Path(__file__).resolve().parents[2]
    / "configs"
    / "Demo"
    / "faster_rcnn_DDW_R_18_FPN_shapes.yaml"
)


@pytest.fixture(scope="module")
def planted(module_folder):
    return register("ddw_test_bad_train", module_folder("bad"))


def tiny_cfg(output, *opts):
    return load_config(
        str(DEMO),
        [
            "DATASETS.TRAIN",
            "('ddw_test_bad_train',)",
            "DATASETS.TEST",
            "('ddw_test_bad_train',)",
            "INPUT.MIN_SIZE_TRAIN",
            "(64,)",
            "INPUT.MAX_SIZE_TRAIN",
            "64",
            "INPUT.MIN_SIZE_TEST",
            "64",
            "INPUT.MAX_SIZE_TEST",
            "64",
            "MODEL.ROI_HEADS.NUM_CLASSES",
            "1",
            "SOLVER.IMS_PER_BATCH",
            "4",
            "SOLVER.MAX_ITER",
            "8",
            "SOLVER.WARMUP_ITERS",
            "1",
            "SOLVER.STEPS",
            "()",
            "SEED",
            "0",
            "TEST.EVAL_PERIOD",
            "0",
            "OUTPUT_DIR",
            str(output),
            *opts,
        ],
    )


def test_training_excludes_names_and_counts_unreadable_images(planted, tmp_path, caplog):
    cfg = tiny_cfg(
        tmp_path,
        "DATALOADER.MAX_UNREADABLE_IMAGE_SHARE",
        "0.5",
        "TEST.EXCLUDE_UNREADABLE_IMAGES",
        "True",
    )
    trainer = DDWTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert trainer.iter == 8
    for path in planted.values():
        assert f"excluding unreadable image {path}" in caplog.text
    logged = {
        json.loads(line)["file_name"]
        for line in (tmp_path / "unreadable_images.jsonl").read_text().splitlines()
    }
    assert logged == set(planted.values())
    metrics = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    counts = [m["data/unreadable_images"] for m in metrics if "data/unreadable_images" in m]
    assert counts and counts[-1] == 5, metrics


def test_too_many_unreadable_images_stop_training_listing_them(planted, tmp_path):
    # The check runs every 20 iterations: the run stops at iteration 20 of 30.
    trainer = DDWTrainer(
        tiny_cfg(tmp_path, "DATALOADER.MAX_UNREADABLE_IMAGE_SHARE", "0.1", "SOLVER.MAX_ITER", "30")
    )
    trainer.resume_or_load(resume=False)
    with pytest.raises(UnreadableImageError) as error:
        trainer.train()
    message = str(error.value)
    assert trainer.iter == 19
    assert (
        "of 15 training images are unreadable, more than DATALOADER.MAX_UNREADABLE_IMAGE_SHARE = "
        "0.1" in message
    )
    assert sum(path in message for path in planted.values()) >= 3


def test_share_out_of_range_is_refused(planted, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"DATALOADER.MAX_UNREADABLE_IMAGE_SHARE = 1.5 is invalid: must be in \[0, 1\]",
    ):
        DDWTrainer(tiny_cfg(tmp_path, "DATALOADER.MAX_UNREADABLE_IMAGE_SHARE", "1.5"))


def test_evaluation_names_the_unreadable_file(planted, tmp_path):
    cfg = tiny_cfg(tmp_path)
    model = DDWTrainer.build_model(cfg)
    with pytest.raises(UnreadableImageError, match=f"cannot read image {planted['missing']}"):
        DDWTrainer.test(cfg, model)


def test_evaluation_can_leave_unreadable_images_out_and_says_how_many(planted, tmp_path, capsys):
    cfg = tiny_cfg(tmp_path, "TEST.EXCLUDE_UNREADABLE_IMAGES", "True")
    results = DDWTrainer.test(cfg, DDWTrainer.build_model(cfg))
    assert "bbox" in results
    out = capsys.readouterr().out
    assert "ddw_test_bad_train: 5 unreadable images were left out of inference" in out
    assert planted["truncated"] in out


def test_unregistered_or_missing_dataset_is_named(tmp_path):
    from detectron2.data.datasets import register_coco_instances

    from ddw_detectron.engine import DatasetNotFoundError, check_datasets

    cfg = tiny_cfg(tmp_path, "DATASETS.TRAIN", "('ddw_nowhere',)")
    with pytest.raises(DatasetNotFoundError, match="dataset 'ddw_nowhere' is not registered"):
        check_datasets(cfg)
    missing = tmp_path / "annotations.json"
    register_coco_instances("ddw_test_missing_files", {}, str(missing), str(tmp_path))
    cfg = tiny_cfg(tmp_path, "DATASETS.TRAIN", "('ddw_test_missing_files',)")
    with pytest.raises(DatasetNotFoundError, match=f"json_file {missing} does not exist"):
        check_datasets(cfg)


def test_resume_checks_the_listed_images_again_and_counts_a_fixed_one_no_more(
    module_folder, capsys
):
    from tests.helpers import write_image

    planted = register("ddw_test_bad_resume", module_folder("bad_resume"))
    output = module_folder("resume")
    dataset = ["DATASETS.TRAIN", "('ddw_test_bad_resume',)", "DATASETS.TEST", "()"]
    first = DDWTrainer(tiny_cfg(output, *dataset, "DATALOADER.MAX_UNREADABLE_IMAGE_SHARE", "0.5"))
    first.resume_or_load(resume=False)
    first.train()  # 5 of 15 unreadable, allowed up to half
    # 5 > 0.3 * 15 = 4.5 stops a resumed run, unless a fixed file is counted no more.
    resumed = tiny_cfg(
        output, *dataset, "DATALOADER.MAX_UNREADABLE_IMAGE_SHARE", "0.3", "SOLVER.MAX_ITER", "12"
    )
    write_image(Path(planted["truncated"]), seed=1)
    trainer = DDWTrainer(resumed)
    trainer.resume_or_load(resume=True)
    assert "1 readable now (no longer counted), 4 still unreadable" in capsys.readouterr().out
    trainer.train()
    assert trainer.iter == 12
    logged = (output / "unreadable_images.jsonl").read_text()
    assert planted["truncated"] not in logged and planted["empty"] in logged


# skipped_images.jsonl: the log's name in version 0.1, read as the same log.
@pytest.mark.parametrize("log_name", ["unreadable_images.jsonl", "skipped_images.jsonl"])
def test_a_new_run_counts_unreadable_images_afresh(planted, tmp_path, capsys, log_name):
    (tmp_path / log_name).write_text(
        json.dumps({"file_name": planted["empty"], "reason": "OSError"}) + "\n"
    )
    trainer = DDWTrainer(tiny_cfg(tmp_path, "DATALOADER.MAX_UNREADABLE_IMAGE_SHARE", "0.5"))
    trainer.resume_or_load(resume=False)
    assert "the 1 images of the earlier run's" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.jsonl"))


def test_boxes_training_would_drop_are_counted_once(tmp_path, caplog):
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.structures import BoxMode

    def records():
        box = {"bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "iscrowd": 0}
        return [
            {
                "file_name": str(tmp_path / f"{i}.png"),
                "image_id": i,
                "height": 64,
                "width": 64,
                "annotations": [{**box, "bbox": [1, 1, 9, 9]}]
                + ([{**box, "bbox": [1, 1, float("nan"), 5]}] if i < 2 else [])
                + ([{**box, "bbox": [3, 3, -4, 5]}] if i == 0 else []),
            }
            for i in range(4)
        ]

    DatasetCatalog.register("ddw_test_nan_boxes", records)
    MetadataCatalog.get("ddw_test_nan_boxes").thing_classes = ["a"]
    try:
        cfg = tiny_cfg(tmp_path, "DATASETS.TRAIN", "('ddw_test_nan_boxes',)")
        with caplog.at_level("WARNING"):
            DDWTrainer.build_train_loader(cfg)
    finally:
        DatasetCatalog.remove("ddw_test_nan_boxes")
        MetadataCatalog.remove("ddw_test_nan_boxes")
    lines = [r.getMessage() for r in caplog.records if "training drops them" in r.getMessage()]
    assert lines == [
        "3 boxes in 2 images of DATASETS.TRAIN ['ddw_test_nan_boxes'] are NaN, missing or of "
        "zero or negative size: training drops them (scripts/check_dataset.py lists them)"
    ]


@pytest.mark.parametrize("iters, hooked", [(0, False), (5, True)])
def test_the_threshold_warmup_hook_comes_from_the_config(planted, tmp_path, iters, hooked):
    from ddw_detectron.engine import ThresholdWarmupHook

    trainer = DDWTrainer(tiny_cfg(tmp_path, "MODEL.DDW.THRESHOLD_WARMUP_ITERS", str(iters)))
    warmups = [h for h in trainer._hooks if isinstance(h, ThresholdWarmupHook)]
    assert [h._warmup_iters for h in warmups] == ([iters] if hooked else [])
