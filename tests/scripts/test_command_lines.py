"""The command-line tools share one convention: ``--help`` works and explains every argument;
a tool that reads a dataset names a missing or unknown one the way train_net.py does."""

import re

import pytest

from tests.helpers import ROOT, run_python

pytestmark = pytest.mark.long(60)

SCRIPTS = sorted(
    p.name for p in (ROOT / "scripts").glob("*.py") if p.name != "install_detectron2.py"
)


def undocumented(help_text: str):
    """Options and positionals of an argparse ``--help`` listed without a help text."""
    lines = help_text.splitlines()
    found = []
    for index, line in enumerate(lines):
        match = re.match(r"^  (\S.*?)(\s{2,}\S.*)?$", line)
        if not match or match.group(2):
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if not re.match(r"^\s{8,}\S", following):  # help wrapped onto the next line
            found.append(match.group(1))
    return [name for name in found if not name.startswith(("-h, --help", "python "))]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_argument_has_help(script):
    result = run_python(f"scripts/{script}", "--help", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    section = result.stdout.split("options:")[0].split("positional arguments:")[-1]
    options = result.stdout.split("options:")[-1]
    if "positional arguments:" in result.stdout:
        options = section + options
    options = options.split("\n\n")[0] if "Examples" in options else options
    assert not undocumented(options), undocumented(options)


def test_a_missing_and_an_unknown_dataset_are_named(tmp_path):
    config = ROOT / "configs" / "Demo" / "faster_rcnn_DDW_R_34_FPN_shapes.yaml"
    env = {"DETECTRON2_DATASETS": tmp_path}
    for dataset, expected in (
        ("coco_2017_val", "Put the dataset under $DETECTRON2_DATASETS"),
        ("coco_2017_vall", "did you mean coco_2017_val"),
    ):
        for script, args in (
            ("visualize_wiring.py", ["--dataset", dataset, "--output", tmp_path / "o"]),
            ("freeze_wiring.py", ["--dataset", dataset, "--output", tmp_path / "f.pth"]),
            ("check_dataset.py", ["--dataset", dataset]),
        ):
            extra = [] if script == "check_dataset.py" else ["--config-file", config]
            result = run_python(f"scripts/{script}", *extra, *args, env=env, timeout=300)
            assert result.returncode != 0, (script, dataset)
            assert expected in result.stderr, (script, result.stderr[-1500:])
            assert "Traceback" not in result.stderr, (script, result.stderr[-1500:])
