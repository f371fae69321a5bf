#!/usr/bin/env python
"""Convert a static ImageNet checkpoint into a Detectron2 checkpoint for a DDW backbone.

    python scripts/convert_pretrained.py --source torchvision \
        --config-file configs/COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.yaml \
        resnet50.pth R-50-ddw.pth

Sources: ``torchvision`` (a ``state_dict`` file of torchvision's ResNet/ResNeXt, MobileNetV2 or
RegNet), ``detectron2`` (a model-zoo ``.pkl``, ResNet), ``ddw`` (a checkpoint of
``scripts/pretrain_imagenet.py`` or of a DDW detector). The output is loaded with
``MODEL.WEIGHTS``; routers not in the source keep their fresh initialisation. With a
classification config (``configs/ImageNet/*.yaml``) the torchvision classifier is converted too
when its class count is ``CLS.NUM_CLASSES``, so ``scripts/pretrain_imagenet.py`` starts from the
whole network.
"""

import argparse

from ddw_detectron.checkpoint import (
    SOURCES,
    convert_checkpoint,
    is_classification_config,
    save_detectron2_checkpoint,
)
from ddw_detectron.classification import add_classification_config
from ddw_detectron.config import load_config
from ddw_detectron.errors import exit_on_user_errors


def print_keys(title, keys):
    print(f"{title}: {len(keys)}")
    for key in keys:
        print(f"  {key}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source",
        required=True,
        choices=SOURCES,
        help="torchvision: a state_dict file; detectron2: a model-zoo .pkl; ddw: a DDW checkpoint",
    )
    parser.add_argument("--config-file", required=True, help="config of the target DDW model")
    parser.add_argument("input", help="the checkpoint file to convert")
    parser.add_argument("output", help="the converted checkpoint, for MODEL.WEIGHTS (.pth)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, KEY VALUE ...")
    args = parser.parse_args(argv)

    with exit_on_user_errors("convert_pretrained", ValueError):
        classification = is_classification_config(args.config_file)
        extra = [add_classification_config] if classification else []
        cfg = load_config(args.config_file, args.opts, extra=extra)
        result = convert_checkpoint(args.source, args.input, cfg, classification)
        save_detectron2_checkpoint(
            result.weights,
            args.output,
            author=f"ddw_detectron convert_pretrained ({args.source})",
            facts=result.facts,
        )
    print(
        f"converted {len(result.weights)} tensors from {result.source} into {result.target}: "
        f"{args.output}"
    )
    for note in result.notes:
        print(note)
    print_keys("unmatched source keys (not written)", result.dropped)
    print_keys("target keys left at their initialisation", result.missing)


if __name__ == "__main__":
    main()
