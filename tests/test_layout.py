"""The package's layout: the library never imports the lab (``ddw_lab``, under
``projects/DDWLab``) nor reaches into ``scripts/``, and the lab lives outside the importable
package; ``ddw_detectron.layers`` imports no Detectron2; no module of the package imports, at any
depth and inside functions too, a module that imports it back."""

import ast
from pathlib import Path
from typing import Dict, Set

from tests.helpers import ROOT

PACKAGE = ROOT / "ddw_detectron"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> Set[str]:
    """Every module ``path`` imports (absolute names; ``from x import y`` also counts
    ``x.y`` when that is a module of the package)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def with_parents(importer: str, names: Set[str]) -> Set[str]:
    """Importing ``a.b.c`` imports the package ``a.b`` too, unless ``a.b`` holds the importer
    (its own packages are being imported already)."""
    found = set(names)
    for name in names:
        parts = name.split(".")
        for k in range(2, len(parts)):
            parent = ".".join(parts[:k])
            if not (importer + ".").startswith(parent + "."):
                found.add(parent)
    return found


def graph() -> Dict[str, Set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in with_parents(name, imports_of(p)) if m in modules and m != name}
        for name, p in modules.items()
    }


def test_the_library_never_imports_the_lab_nor_the_scripts():
    for path in PACKAGE.rglob("*.py"):
        lab = sorted(m for m in imports_of(path) if m.split(".")[0] in ("ddw_lab", "projects"))
        assert not lab, f"{module_name(path)} imports the lab: {lab}"
        text = path.read_text()
        assert "import_module" not in text or "ddw_lab" not in text, path
        assert '"scripts"' not in text and "scripts/" not in "".join(
            line for line in text.splitlines() if "open(" in line or "Path(" in line
        ), path


def test_the_lab_is_outside_the_package_and_registers_nothing_on_library_import():
    import subprocess
    import sys

    assert not (PACKAGE / "tools").exists()
    for generated in ("shapes", "mixed", "digits"):
        assert not (PACKAGE / "data" / f"{generated}.py").exists(), generated
    check = (
        "import sys, ddw_detectron;"
        "from detectron2.data import DatasetCatalog;"
        "print(sorted(m for m in sys.modules if m.startswith('ddw_lab')),"
        " [d for d in DatasetCatalog.list() if d.startswith('ddw_')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[] []", out


def test_layers_is_pure_pytorch():
    for path in (PACKAGE / "layers").rglob("*.py"):
        assert not [m for m in imports_of(path) if m.startswith("detectron2")], path


def test_no_import_circles():
    edges = graph()
    state: Dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_every_registered_builder_is_written_out_where_grep_finds_it():
    import inspect

    from detectron2.modeling import BACKBONE_REGISTRY

    import ddw_detectron  # noqa: F401  (registers the builders)

    ours = [name for name, _ in BACKBONE_REGISTRY if "ddw" in name]
    assert len(ours) >= 9
    for name in ours:
        builder = BACKBONE_REGISTRY.get(name)
        assert builder.__name__ == name
        assert f"def {name}(" in inspect.getsource(inspect.getmodule(builder)), name
