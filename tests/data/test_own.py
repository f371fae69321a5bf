import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from ddw_detectron.data.own import (
    DatasetArgumentError,
    register_dataset_argument,
    register_dataset_arguments,
)
from tests.helpers import write_dataset


@pytest.fixture
def coco(tmp_path):
    json_path, images, _ = write_dataset(tmp_path, good=3, defects=())
    yield json_path, images
    for name in ("ddw_test_own", "ddw_test_own_2"):
        if name in DatasetCatalog.list():
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def test_a_json_and_folder_are_registered_under_the_name(coco):
    json_path, images = coco
    assert register_dataset_argument(f"ddw_test_own={json_path}:{images}") == "ddw_test_own"
    records = DatasetCatalog.get("ddw_test_own")
    assert len(records) == 3 and records[0]["file_name"].startswith(str(images))
    assert MetadataCatalog.get("ddw_test_own").thing_classes == ["box"]
    # The same again (each launched process registers): accepted.
    assert register_dataset_argument(f"ddw_test_own={json_path}:{images}") == "ddw_test_own"


def test_a_plain_name_passes_through():
    assert register_dataset_arguments(["coco_2017_val", "ddw_shapes_val"]) == [
        "coco_2017_val",
        "ddw_shapes_val",
    ]


def test_mistakes_name_the_argument(coco, tmp_path):
    json_path, images = coco
    cases = {
        "ddw_test_own=annotations:images": "expected a registered name or NAME=annotations",
        f"={json_path}:{images}": "expected a registered name",
        f"ddw_test_own={tmp_path / 'none.json'}:{images}": "none.json is not a file",
        f"ddw_test_own={json_path}:{tmp_path / 'nowhere'}": "nowhere is not a folder",
        f"coco_2017_val={json_path}:{images}": "'coco_2017_val' is the name of another",
    }
    for spec, match in cases.items():
        with pytest.raises(DatasetArgumentError, match=match) as error:
            register_dataset_argument(spec)
        assert str(error.value).startswith(f"--dataset {spec!r}: ")
