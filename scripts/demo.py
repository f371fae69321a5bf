#!/usr/bin/env python
"""Run a DDW detector on images, folders or a video, and draw detections and wirings.

    python scripts/demo.py --config-file configs/Demo/faster_rcnn_DDW_R_34_FPN_shapes.yaml \
        --input photos/ street.jpg --output out/ \
        --opts MODEL.WEIGHTS output/demo/detect/model_final.pth
    python scripts/demo.py --config-file CFG --video-input clip.mp4 --output out/ \
        --opts MODEL.WEIGHTS ...

For every image, ``<name>.jpg`` holds the detections drawn by Detectron2's ``Visualizer`` and
``<name>_wiring.png`` the image's own wiring (one heatmap and DAG per dynamic stage). For a video,
``<name>.mp4`` holds the drawn frames and ``<name>_frame<k>_wiring.png`` the wiring of every
``--wiring-every``-th frame. Files that are not readable images are skipped with a message.
"""

import importlib.util
import sys
from pathlib import Path

import cv2
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.detection_utils import read_image
from detectron2.utils.visualizer import Visualizer

import ddw_detectron
from ddw_detectron.config import load_config
from ddw_detectron.data.own import DATASET_ARGUMENT_HELP, register_dataset_argument
from ddw_detectron.engine import DDWPredictor
from ddw_detectron.errors import exit_on_user_errors
from ddw_detectron.utils.image_tools import image_files, image_tool_parser, warn_if_untrained
from ddw_detectron.utils.visualize import save_wiring

if importlib.util.find_spec("ddw_lab"):  # the clone's lab: its generated datasets ddw_shapes_*
    import ddw_lab  # noqa: F401


def setup(args):
    cfg = load_config(args.config_file, args.opts)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = args.confidence_threshold
    cfg.MODEL.RETINANET.SCORE_THRESH_TEST = args.confidence_threshold
    cfg.freeze()
    return cfg


def draw(predictor, metadata, image_bgr):
    """Predict on a BGR image; return the drawn RGB image and the image's wiring."""
    predictions = predictor(image_bgr)
    wiring = ddw_detectron.collect_wiring(predictor.model)
    visualizer = Visualizer(image_bgr[:, :, ::-1], metadata)
    drawn = visualizer.draw_instance_predictions(predictions["instances"].to("cpu")).get_image()
    return drawn, wiring, len(predictions["instances"])


def run_images(predictor, metadata, files, output: Path) -> int:
    done = 0
    for path in files:
        try:
            image = read_image(str(path), format="BGR")
        except Exception as exc:  # PIL raises several kinds for files that are not images
            print(f"excluding {path}: not a readable image ({type(exc).__name__})", file=sys.stderr)
            continue
        drawn, wiring, count = draw(predictor, metadata, image)
        cv2.imwrite(str(output / f"{path.stem}.jpg"), drawn[:, :, ::-1])
        if wiring:
            save_wiring(
                wiring, str(output / f"{path.stem}_wiring.png"), title=f"wiring of {path.name}"
            )
        print(f"{path}: {count} detections -> {output / (path.stem + '.jpg')}")
        done += 1
    return done


def run_video(predictor, metadata, path: Path, output: Path, wiring_every: int) -> int:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        print(f"excluding {path}: not a readable video", file=sys.stderr)
        return 0
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer, frames = None, 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        drawn, wiring, _ = draw(predictor, metadata, frame)
        if writer is None:
            height, width = drawn.shape[:2]
            writer = cv2.VideoWriter(
                str(output / f"{path.stem}.mp4"),
                cv2.VideoWriter_fourcc(*"mp4v"),
                fps,
                (width, height),
            )
        writer.write(drawn[:, :, ::-1])
        if wiring and frames % wiring_every == 0:
            save_wiring(
                wiring,
                str(output / f"{path.stem}_frame{frames:05d}_wiring.png"),
                title=f"{path.name}, frame {frames}",
            )
        frames += 1
    capture.release()
    if writer is not None:
        writer.release()
    print(f"{path}: {frames} frames -> {output / (path.stem + '.mp4')}")
    return frames


def main(argv=None):
    parser = image_tool_parser(*__doc__.split("\n\n", 1))
    parser.add_argument("--video-input", default="", help="a video file")
    parser.add_argument(
        "--dataset", default="", metavar="NAME=JSON:IMAGES",
        help=DATASET_ARGUMENT_HELP + ": its class names label the boxes",
    )  # fmt: skip
    parser.add_argument(
        "--confidence-threshold", type=float, default=0.5, help="lowest score drawn (0.5)"
    )
    parser.add_argument(
        "--wiring-every", type=int, default=25, help="video: wiring picture every N frames"
    )
    args = parser.parse_args(argv)
    if not args.input and not args.video_input:
        parser.error("give --input and/or --video-input")

    with exit_on_user_errors("demo"):
        dataset = register_dataset_argument(args.dataset) if args.dataset else None
        if dataset:
            DatasetCatalog.get(dataset)  # reading the json sets its class names
        cfg = setup(args)
        warn_if_untrained("demo", cfg)
        predictor = DDWPredictor(cfg)
    named = dataset or (cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else "__unused")
    metadata = MetadataCatalog.get(named)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    done = run_images(predictor, metadata, image_files(args.input), output) if args.input else 0
    if args.video_input:
        done += run_video(predictor, metadata, Path(args.video_input), output, args.wiring_every)
    if done == 0:
        sys.exit("demo: error: nothing readable among the inputs")


if __name__ == "__main__":
    main()
