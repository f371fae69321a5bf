from pathlib import Path

from tests.helpers import run_python


def test_prepare_data_makes_the_digits_and_prints_their_root(tmp_path):
    result = run_python("scripts/prepare_data.py", "digits", "--quiet", env={
        "DDW_DATASETS_CACHE": tmp_path
    })  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    root = Path(result.stdout.strip().splitlines()[-1])
    assert root.parent == tmp_path
    assert (
        len(list((root / "train").glob("*/*.png"))) + len(list((root / "val").glob("*/*.png")))
        == 1797
    )
