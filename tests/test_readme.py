"""Every ```python block of README.md runs on its own, in a fresh namespace."""

import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def _run(source: str, where: Path) -> None:
    # a fresh globals dict per block: nothing defined by another block is visible (modules
    # already imported are shared, which only saves import time)
    import os

    cwd = os.getcwd()
    os.chdir(where)
    try:
        exec(compile(source, "<README block>", "exec"), {"__name__": "__readme__"})
    finally:
        os.chdir(cwd)


def test_the_readme_has_python_blocks_and_a_block_that_leans_on_another_fails(tmp_path):
    assert len(BLOCKS) >= 5
    with pytest.raises(NameError):  # the namespace really is fresh
        _run("V", tmp_path)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_block_runs_alone(i, tmp_path):
    _run(BLOCKS[i], tmp_path)
