"""Metadata is in pyproject.toml; this file only puts ``configs/`` into the built package as
``ddw_detectron/model_zoo/configs`` (read by ``ddw_detectron.model_zoo``)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithConfigs(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "ddw_detectron" / "model_zoo" / "configs"
        shutil.copytree(Path(__file__).resolve().parent / "configs", target, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithConfigs})
