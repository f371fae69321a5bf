#!/usr/bin/env python
"""Convert a static ImageNet checkpoint into a Detectron2 checkpoint for a DDW backbone.

    python scripts/convert_pretrained.py --source torchvision \
        --config-file configs/COCO-Detection/faster_rcnn_DDW_R_50_FPN_1x.yaml resnet50.pth R-50-ddw.pth

Sources: ``torchvision`` (a ``state_dict`` file of torchvision's ResNet/ResNeXt, MobileNetV2 or
RegNet), ``detectron2`` (a model-zoo ``.pkl``, ResNet), ``ddw`` (a checkpoint of
``scripts/pretrain_imagenet.py`` or of a DDW detector). The output is loaded with
``MODEL.WEIGHTS``; routers not in the source keep their fresh initialisation.
"""

import argparse
import sys

import torch
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY

from ddw_detectron.checkpoint import (
    backbone_family,
    convert_ddw,
    convert_detectron2_pkl,
    convert_torchvision,
    describe_state_dict,
    match_backbone,
    save_detectron2_checkpoint,
)
from ddw_detectron.config import load_config


def bottom_up_state(cfg):
    """The state dict of the config's bottom-up DDW backbone (built without FPN)."""
    family = backbone_family(cfg)
    builder = BACKBONE_REGISTRY.get(f"build_ddw_{family}_backbone")
    backbone = builder(cfg, ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN)))
    return backbone.state_dict(), f"DDW {family} from {cfg.MODEL.BACKBONE.NAME}"


def load_torch(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SystemExit(f"convert_pretrained: error: cannot read {path} as a PyTorch checkpoint: {exc}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, choices=["torchvision", "detectron2", "ddw"])
    parser.add_argument("--config-file", required=True, help="config of the target DDW model")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, KEY VALUE ...")
    args = parser.parse_args(argv)

    cfg = load_config(args.config_file, args.opts)
    target_state, target = bottom_up_state(cfg)

    if args.source == "torchvision":
        state = load_torch(args.input)
        state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
        source = f"torchvision {describe_state_dict(state)}"
        converted, dropped = convert_torchvision(state, backbone_family(cfg))
    elif args.source == "detectron2":
        converted, dropped = convert_detectron2_pkl(args.input)
        source = f"a Detectron2 model-zoo checkpoint ({describe_state_dict(converted)})"
    else:
        converted, dropped = convert_ddw(load_torch(args.input))
        source = "a DDW checkpoint"

    try:
        missing = match_backbone(converted, target_state, source, target)
    except ValueError as exc:
        sys.exit(f"convert_pretrained: error: {exc}")
    save_detectron2_checkpoint(converted, args.output, author=f"ddw_detectron convert_pretrained ({args.source})")
    print(f"converted {len(converted)} tensors from {source} into {target}: {args.output}")
    print(f"unmatched source keys (not written): {len(dropped)}")
    for key in dropped:
        print(f"  {key}")
    print(f"backbone keys left at their initialisation: {len(missing)}")
    for key in missing:
        print(f"  {key}")


if __name__ == "__main__":
    main()
