#!/usr/bin/env python
"""Install Detectron2 v0.6 from its Python sources into the current environment.

The package index has no ``detectron2``. It has ``pb1-detectron2==0.6``, a source distribution
whose Python files equal upstream Detectron2 v0.6 but whose C++/CUDA sources are missing, so its
own build fails. This script downloads that sdist (pinned by sha256), takes its ``detectron2``
package (model-zoo configs included) and the three projects upstream installs under
``detectron2.projects``, adds ``ddw_detectron/compat/detectron2_C.py`` as ``detectron2/_C.py``,
and installs the result as the distribution ``detectron2`` version 0.6.

An importable Detectron2 with compiled ops (a user's own build) is kept as it is.
Run with the target environment's Python; torch must already be installed there.
"""

import argparse
import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST_NAME = "pb1-detectron2"
SDIST_VERSION = "0.6"
SDIST_SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"
PROJECTS = {
    "point_rend": "projects/PointRend/point_rend",
    "deeplab": "projects/DeepLab/deeplab",
    "panoptic_deeplab": "projects/Panoptic-DeepLab/panoptic_deeplab",
}
# Upstream's install_requires without its formatter pin (black==21.4b2, only used to pretty-print
# LazyConfig.save output, which falls back to plain text) and without the caffe2-only packages.
INSTALL_REQUIRES = [
    "Pillow>=7.1",
    "matplotlib",
    "pycocotools>=2.0.2",
    "termcolor>=1.1",
    "yacs>=0.1.8",
    "tabulate",
    "cloudpickle",
    "tqdm>4.29.0",
    "tensorboard",
    "fvcore>=0.1.5,<0.1.6",
    "iopath>=0.1.7,<0.1.10",
    "omegaconf>=2.1",
    "hydra-core>=1.1",
]
FALLBACK = Path(__file__).resolve().parent.parent / "ddw_detectron" / "compat" / "detectron2_C.py"
SETUP_PY = """\
from setuptools import find_packages, setup

setup(
    name="detectron2",
    version={version!r},
    description="Detectron2 v0.6 Python sources (from pb1-detectron2), compiled ops replaced "
    "by ddw_detectron's fallback",
    packages=find_packages(),
    package_data={{"detectron2.model_zoo": ["configs/**/*.yaml", "configs/**/*.py"]}},
    include_package_data=True,
    python_requires=">=3.6",
    install_requires={requires!r},
)
"""


def fail(message: str) -> None:
    print(f"install_detectron2: error: {message}", file=sys.stderr)
    sys.exit(1)


def installed_state() -> str:
    """'compiled', 'fallback' (ours, current), 'stale' (ours, older fallback) or 'absent'."""
    spec = importlib.util.find_spec("detectron2")
    if spec is None or spec.origin is None:
        return "absent"
    package_dir = Path(spec.origin).parent
    fallback = package_dir / "_C.py"
    if fallback.is_file():
        return "fallback" if fallback.read_bytes() == FALLBACK.read_bytes() else "stale"
    if any(package_dir.glob("_C*.so")) or any(package_dir.glob("_C*.pyd")):
        return "compiled"
    return "stale"


def download_sdist(dest: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--no-build-isolation",
        "-d",
        str(dest),
        f"{SDIST_NAME}=={SDIST_VERSION}",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    archives = list(dest.glob("*.tar.gz"))
    if result.returncode != 0 or not archives:
        fail(
            f"could not download {SDIST_NAME}=={SDIST_VERSION} from the package registry "
            f"(pip exit {result.returncode}):\n{result.stderr.strip()[-2000:]}"
        )
    archive = archives[0]
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        fail(f"{archive.name} has sha256 {digest}, expected {SDIST_SHA256}; refusing to install it")
    return archive


def stage_sources(archive: Path, stage: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(stage / "sdist", filter="data")
    (root,) = [p for p in (stage / "sdist").iterdir() if p.is_dir()]
    package = stage / "build" / "detectron2"
    shutil.copytree(root / "detectron2", package)
    for name, source in PROJECTS.items():
        shutil.copytree(root / source, package / "projects" / name)
    if not any((package / "model_zoo" / "configs").rglob("*.yaml")):
        fail(f"{archive.name} has no model-zoo configs under detectron2/model_zoo/configs")
    shutil.copyfile(FALLBACK, package / "_C.py")
    (stage / "build" / "setup.py").write_text(
        SETUP_PY.format(version=SDIST_VERSION, requires=INSTALL_REQUIRES)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="reinstall even if current")
    args = parser.parse_args()

    state = installed_state()
    if state == "compiled":
        print("install_detectron2: a Detectron2 with compiled ops is installed; keeping it")
        return
    if state == "fallback" and not args.force:
        print("install_detectron2: Detectron2 0.6 (Python sources + fallback ops) is current")
        return
    if importlib.util.find_spec("torch") is None:
        fail("torch must be installed in this environment first (Detectron2's setup imports it)")

    with tempfile.TemporaryDirectory(prefix="ddw-d2-") as tmp:
        tmp = Path(tmp)
        archive = download_sdist(tmp / "download")
        stage_sources(archive, tmp)
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--force-reinstall",
            "--quiet",
            str(tmp / "build"),
        ]
        if subprocess.run(command).returncode != 0:
            fail("pip could not install the staged Detectron2 sources (see pip's output above)")
    print(f"install_detectron2: installed detectron2 {SDIST_VERSION} from {archive.name}")


if __name__ == "__main__":
    main()
