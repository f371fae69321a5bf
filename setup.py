from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="ddw_detectron",
    version="0.1.0",
    description="Differentiable Dynamic Wirings (DDW) backbones for Detectron2",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["ddw_detectron", "ddw_detectron.*"]),
    python_requires=">=3.9",
    install_requires=["torch>=1.10", "torchvision", "fvcore", "matplotlib", "tqdm"],
)
