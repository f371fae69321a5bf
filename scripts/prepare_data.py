#!/usr/bin/env python
"""Generate the project's datasets into the dataset cache ($DDW_DATASETS_CACHE, by default
~/.cache/ddw_detectron) and print where each is, for CLS.DATA_ROOT or DATASETS.* (no download).

    python scripts/prepare_data.py digits      # scikit-learn's digits as an ImageFolder
    python scripts/prepare_data.py mixed       # ddw_mixed, the comparison's task (25,000 images)
    python scripts/prepare_data.py shapes      # the demo's detection splits and its crops
    python scripts/pretrain_imagenet.py --config-file configs/Digits/pretrain_DDW_R_18_digits.yaml \
        CLS.DATA_ROOT "$(python scripts/prepare_data.py digits --quiet)"
"""

import argparse

from ddw_lab.data.prepare import DATASETS, prepare


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("datasets", nargs="+", choices=DATASETS, help="what to generate")
    parser.add_argument("--quiet", action="store_true", help="print the folders only")
    args = parser.parse_args(argv)
    for name in args.datasets:
        for what, folder in prepare(name).items():
            print(folder if args.quiet else f"{what}: {folder}")


if __name__ == "__main__":
    main()
