"""ddw_detectron.utils.image_tools: the image tools' command line and input files."""

import pytest

from ddw_detectron.utils.image_tools import image_files, image_tool_parser


def test_parser_takes_inputs_output_and_overrides_after_opts():
    parser = image_tool_parser("a tool")
    parser.add_argument("--per-image", type=int, default=8)
    args = parser.parse_args(
        ["--config-file", "c.yaml", "--input", "a.jpg", "photos", "--output", "out"]
        + ["--per-image", "2", "--opts", "MODEL.WEIGHTS", "m.pth", "MODEL.DEVICE", "cpu"]
    )
    assert (args.config_file, args.input, args.output) == ("c.yaml", ["a.jpg", "photos"], "out")
    assert args.per_image == 2 and args.opts == ["MODEL.WEIGHTS", "m.pth", "MODEL.DEVICE", "cpu"]


def test_parser_requires_the_config_and_the_output(capsys):
    with pytest.raises(SystemExit):
        image_tool_parser("a tool").parse_args(["--config-file", "c.yaml"])
    assert "the following arguments are required: --output" in capsys.readouterr().err


def test_image_files_expands_folders_sorted_and_reports_missing_paths(tmp_path, capsys):
    folder, nested = tmp_path / "photos", tmp_path / "photos" / "more"
    nested.mkdir(parents=True)
    for path in (folder / "b.png", folder / "a.jpg", nested / "c.png", tmp_path / "d.jpg"):
        path.write_bytes(b"")
    missing = tmp_path / "gone.jpg"
    paths = [str(tmp_path / "d.jpg"), str(folder), str(missing)]
    assert image_files(paths) == [tmp_path / "d.jpg", folder / "a.jpg", folder / "b.png"]
    assert f"excluding {missing}: no such file" in capsys.readouterr().err
    assert image_files(paths, recursive=True)[1:] == [
        folder / "a.jpg",
        folder / "b.png",
        nested / "c.png",
    ]
