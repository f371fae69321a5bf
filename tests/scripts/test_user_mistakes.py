"""A user's mistake in a config, a key or the output folder: one line naming it, exit status 1,
no traceback, through the real entry points."""

import re
import subprocess

import pytest

from tests.helpers import ROOT, TINY_DETECTION, run_python

pytestmark = pytest.mark.long(90)

DEMO = ROOT / "configs" / "Demo" / "faster_rcnn_DDW_R_18_FPN_shapes.yaml"
LAZY = ROOT / "configs" / "Demo" / "faster_rcnn_DDW_R_18_FPN_shapes.py"


def one_error_line(result, tool: str) -> str:
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"{tool}: error:")]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def train_net(config, output, *opts):
    return run_python(
        "scripts/train_net.py", "--config-file", config, *TINY_DETECTION,
        "OUTPUT_DIR", output, *opts, timeout=300,
    )  # fmt: skip


def write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", ["empty", "list", "loop", "self", "lazyconfig", "missing"])
def test_a_config_file_that_is_not_a_yaml_config_names_the_file(tmp_path, case):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    config = a
    if case == "empty":
        write(a, "# nothing\n")
        expected = f"config file {a} is empty"
    elif case == "list":
        write(a, "- MODEL\n- SOLVER\n")
        expected = f"config file {a} is a YAML list, not a mapping of config keys"
    elif case == "loop":
        write(a, '_BASE_: "b.yaml"\nSOLVER:\n  MAX_ITER: 3\n')
        write(b, '_BASE_: "a.yaml"\n')
        expected = f"config file {b} has a _BASE_ loop: {a} -> {b} -> {a}"
    elif case == "self":
        write(a, '_BASE_: "./a.yaml"\n')
        expected = f"config file {a} has a _BASE_ loop: {a} -> {a}"
    elif case == "lazyconfig":
        config = LAZY
        expected = f"{LAZY} is a LazyConfig (Python), and this tool reads YAML configs"
    else:
        config = tmp_path / "nowhere.yaml"
        expected = f"config file {config} does not exist"
    line = one_error_line(train_net(config, tmp_path / "out"), "train_net")
    assert expected in line


def test_demo_refuses_a_lazyconfig_in_one_line(tmp_path):
    result = run_python(
        "scripts/demo.py", "--config-file", LAZY, "--input", tmp_path, "--output", tmp_path,
        timeout=300,
    )  # fmt: skip
    assert "is a LazyConfig (Python)" in one_error_line(result, "demo")


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("MODEL.RESNETS.DEPTH", "42", "MODEL.RESNETS.DEPTH = 42 is invalid: allowed values are"),
        ("MODEL.DDW.THRESHOLD", "1.5", "MODEL.DDW.THRESHOLD = 1.5 is invalid"),
    ],
)
def test_a_bad_value_names_the_key(tmp_path, key, value, expected):
    assert expected in one_error_line(train_net(DEMO, tmp_path / "out", key, value), "train_net")


def test_an_output_dir_that_is_a_file_is_named(tmp_path):
    output = write(tmp_path / "out", "a file\n")
    line = one_error_line(train_net(DEMO, output), "train_net")
    assert f"OUTPUT_DIR {output} cannot be used" in line and "a file of that name" in line


def test_a_read_only_output_dir_is_named(tmp_path):
    disk = tmp_path / "ro"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(disk)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        line = one_error_line(train_net(DEMO, disk / "out"), "train_net")
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    assert f"OUTPUT_DIR {disk / 'out'} cannot be used: Read-only file system" in line


def test_a_checkpoint_damaged_in_the_middle_is_refused_naming_the_entry(tmp_path):
    from detectron2.modeling import build_model

    from ddw_detectron.config import load_config
    from ddw_detectron.engine import DDWCheckpointer

    model = build_model(load_config(str(DEMO), ["MODEL.DEVICE", "cpu"]))
    DDWCheckpointer(model, save_dir=str(tmp_path)).save("model_final")
    path = tmp_path / "model_final.pth"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(4096)
    path.write_bytes(bytes(data))
    line = one_error_line(train_net(DEMO, tmp_path / "out", "MODEL.WEIGHTS", path), "train_net")
    assert f"cannot read checkpoint {path}: entry " in line
    assert re.search(r"entry \S+/data/\d+ is damaged", line)
