"""The README's code blocks marked ``<!-- tested -->`` run as written, each pasted into a fresh
Python outside the repository, on a CPU."""

import re

import pytest

from tests.helpers import ROOT, run_python

pytestmark = pytest.mark.long(40)

BLOCKS = re.findall(r"<!-- tested -->\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_has_tested_blocks():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(BLOCKS[index])
    result = run_python(
        str(script), env={"CUDA_VISIBLE_DEVICES": "", "DDW_DATASETS_CACHE": tmp_path}, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
