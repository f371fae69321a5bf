import pytest

from ddw_detectron.utils.yaml_files import UnsafeConfigError, check_config_file
from tests.helpers import CONFIGS


@pytest.mark.parametrize(
    "text, match",
    [
        ("# nothing\n", "is empty"),
        ("- MODEL\n", "is a YAML list, not a mapping of config keys"),
        ("_BASE_: [1]\n", "_BASE_ must be a path, got \\[1\\]"),
        ('_BASE_: "a.yaml"\n', "has a _BASE_ loop"),
        ('_BASE_: "missing.yaml"\n', "missing.yaml does not exist"),
        ("MODEL: !!python/object/apply:os.system ['true']\n", "is refused"),
    ],
)
def test_a_file_that_is_not_a_config_is_named(tmp_path, text, match):
    path = tmp_path / "a.yaml"
    path.write_text(text)
    with pytest.raises(UnsafeConfigError, match=match):
        check_config_file(str(path))


def test_every_shipped_config_passes():
    for path in sorted(CONFIGS.rglob("*.yaml")):
        check_config_file(str(path))
