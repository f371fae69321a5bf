import itertools
import json
import subprocess
import sys

import pytest
import torch

from ddw_detectron.compat import build_coco_evaluator, has_compiled_ops

pytestmark = [
    pytest.mark.long(35),
    pytest.mark.skipif(has_compiled_ops(), reason="a compiled Detectron2 is installed"),
]


@pytest.mark.parametrize(
    "order",
    [list(p) for p in itertools.permutations(["modeling", "evaluation", "engine"])]
    + [
        ["ddw_detectron", "modeling", "evaluation", "engine"],
        ["engine", "ddw_detectron", "modeling"],
    ],
)
def test_imports_in_any_order_in_a_fresh_interpreter(order):
    modules = [m if m == "ddw_detectron" else f"detectron2.{m}" for m in order]
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_missing_kernels_raise_a_clear_error():
    from detectron2 import _C
    from detectron2.layers import ROIAlignRotated, nms_rotated
    from detectron2.layers.rotated_boxes import pairwise_iou_rotated

    boxes = torch.tensor([[10.0, 10.0, 4.0, 4.0, 0.0], [11.0, 10.0, 4.0, 4.0, 30.0]])
    calls = {
        "nms_rotated": lambda: nms_rotated(boxes, torch.tensor([0.9, 0.8]), 0.5),
        "box_iou_rotated": lambda: pairwise_iou_rotated(boxes, boxes),
        "roi_align_rotated_forward": lambda: ROIAlignRotated((2, 2), 1.0, 0)(
            torch.randn(1, 1, 8, 8), torch.tensor([[0.0, 4.0, 4.0, 2.0, 2.0, 0.0]])
        ),
        # On CPU, DeformConv runs through torchvision; its CUDA path calls the kernel.
        "deform_conv_forward": lambda: _C.deform_conv_forward(),
        "modulated_deform_conv_forward": lambda: _C.modulated_deform_conv_forward(),
    }
    for op, call in calls.items():
        with pytest.raises(
            NotImplementedError, match=rf"detectron2\._C\.{op} .*full Detectron2 build"
        ):
            call()


def test_fast_coco_evaluator_is_named_and_ours_uses_pycocotools(tmp_path):
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.evaluation.fast_eval_api import COCOeval_opt
    from detectron2.structures import Boxes, Instances
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = {
        "images": [{"id": 1, "width": 8, "height": 8}],
        "annotations": [],
        "categories": [{"id": 1, "name": "a"}],
    }
    coco.createIndex()
    evaluator = COCOeval_opt(
        coco,
        coco.loadRes([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "score": 1.0}]),
        "bbox",
    )
    with pytest.raises(NotImplementedError, match="fast COCO evaluator"):
        evaluator.evaluate()

    # Ours evaluates (through pycocotools) where the fast evaluator above raises.
    name = f"ddw_test_compat_{tmp_path.name}"
    DatasetCatalog.register(name, lambda: [])
    MetadataCatalog.get(name).set(
        json_file=str(tmp_path / "x.json"),
        thing_classes=["a"],
        thing_dataset_id_to_contiguous_id={1: 0},
    )
    box = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "area": 16}
    (tmp_path / "x.json").write_text(
        json.dumps(
            {
                "images": [{"id": 1, "width": 8, "height": 8, "file_name": "1.jpg"}],
                "annotations": [{**box, "iscrowd": 0}],
                "categories": [{"id": 1, "name": "a"}],
            }
        )
    )
    prediction = Instances((8, 8), pred_boxes=Boxes(torch.tensor([[0.0, 0.0, 4.0, 4.0]])))
    prediction.scores, prediction.pred_classes = torch.tensor([0.9]), torch.tensor([0])
    evaluator = build_coco_evaluator(name, output_dir=str(tmp_path))
    evaluator.reset()
    evaluator.process([{"image_id": 1}], [{"instances": prediction}])
    assert evaluator.evaluate()["bbox"]["AP"] == pytest.approx(100.0)


def test_polygon_masks_work_with_current_numpy():
    from detectron2.structures import PolygonMasks

    triangle = [0.0, 0.0, 4.0, 0.0, 4.0, 4.0]
    masks = PolygonMasks([[triangle], [triangle, triangle]])
    assert masks.nonempty().tolist() == [True, True]  # Detectron2 v0.6 computes this with np.bool


def test_export_and_analysis_import_without_caffe2():
    code = (
        "import detectron2.layers\n"
        "from detectron2.utils.analysis import FlopCountAnalysis\n"
        "from detectron2.export import TracingAdapter\n"
        "try:\n    from detectron2.export import Caffe2Tracer\nexcept ModuleNotFoundError as e:\n  "
        "  print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "needs the 'caffe2' package" in result.stdout
