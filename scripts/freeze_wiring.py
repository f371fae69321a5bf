#!/usr/bin/env python
"""Turn a trained DDW detector into one with a single, static wiring (beyond the paper).

    python scripts/freeze_wiring.py \
        --config-file configs/Demo/faster_rcnn_DDW_R_18_FPN_shapes.yaml \
        --dataset ddw_shapes_val --output frozen.pth MODEL.WEIGHTS output/demo/model_final.pth

The wiring of every dynamic stage is collected over the dataset and fixed to its mean (``--mode
mean``: the average of the weights each image used; edges whose average is under the threshold
are dropped) or to the most frequent pattern of kept edges (``--mode mode``, with the mean
weights of the images that had it). The frozen model keeps the checkpoint format (its routers
output the fixed weights for every input), for hardware that wants one static graph. Both models
are evaluated on the dataset and the AP loss of freezing is printed and written to JSON.
"""

import argparse
import importlib.util
import json
from pathlib import Path

from ddw_detectron.checkpoint import DDWCheckpointer, consumer_facts
from ddw_detectron.config import load_config
from ddw_detectron.data.own import DATASET_ARGUMENT_HELP, register_dataset_argument
from ddw_detectron.engine import DDWTrainer, check_datasets
from ddw_detectron.errors import exit_on_user_errors
from ddw_detectron.utils.freezing import FREEZE_MODES, freeze_over_dataset

if importlib.util.find_spec("ddw_lab"):  # the clone's lab: its generated datasets ddw_shapes_*
    import ddw_lab  # noqa: F401


def box_ap(results):
    return {k: results["bbox"][k] for k in ("AP", "AP50", "AP75")} if "bbox" in results else results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config-file", required=True, metavar="FILE", help="the trained detector's config"
    )
    parser.add_argument(
        "--dataset", required=True, help=DATASET_ARGUMENT_HELP + "; wirings collected on it"
    )
    parser.add_argument(
        "--mode",
        choices=FREEZE_MODES,
        default="mean",
        help="mean: each edge's mean weight; mode: the most frequent pattern of kept edges",
    )
    parser.add_argument("--output", required=True, help="checkpoint of the frozen model (.pth)")
    parser.add_argument(
        "opts",
        nargs=argparse.REMAINDER,
        metavar="KEY VALUE",
        help="config overrides, e.g. MODEL.WEIGHTS model_final.pth",
    )
    args = parser.parse_args(argv)

    with exit_on_user_errors("freeze_wiring", ValueError):
        args.dataset = register_dataset_argument(args.dataset)
        cfg = load_config(args.config_file, args.opts)
        cfg.DATASETS.TEST = (args.dataset,)
        check_datasets(cfg)
        model = DDWTrainer.build_model(cfg)
        facts = consumer_facts(cfg)
        DDWCheckpointer(model, facts=facts).resume_or_load(cfg.MODEL.WEIGHTS, resume=False)
        dynamic = box_ap(DDWTrainer.test(cfg, model))
        fixed = freeze_over_dataset(cfg, model, args.dataset, args.mode)
        frozen = box_ap(DDWTrainer.test(cfg, model))

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    DDWCheckpointer(model, save_dir=str(output.parent), facts=facts).save(output.stem)
    report = {
        "dataset": args.dataset,
        "mode": args.mode,
        "dynamic": dynamic,
        "frozen": frozen,
        "wiring": {k: v.tolist() for k, v in fixed.items()},
    }
    if "AP" in dynamic and "AP" in frozen:
        report["ap_loss"] = dynamic["AP"] - frozen["AP"]
        print(
            f"box AP dynamic {dynamic['AP']:.2f}, frozen ({args.mode}) {frozen['AP']:.2f}: loss "
            f"{report['ap_loss']:.2f}"
        )
    output.with_suffix(".json").write_text(json.dumps(report, indent=2))
    print(f"frozen model: {output}")


if __name__ == "__main__":
    main()
