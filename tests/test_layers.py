"""The package's floors (docs/design.md, package layout): no module imports from a package on a higher floor."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import List

PACKAGE = Path(__file__).resolve().parents[1] / "nero_ns"
FLOORS = {
    "errors": 0, "colors": 0, "console": 0, "io": 0,
    "components": 1,
    "fields": 2,
    "datamanagers": 3,
    "models": 4, "engine": 4, "pipelines": 4,
    "exporters": 5, "evaluation": 5, "process": 5, "relight": 5, "synthetic": 5, "viewer": 5,
    "method_configs": 6, "demo": 6,
}
"""The floor of each top-level module or package of nero_ns (0: the ground floor), as in docs/design.md's table."""


def upward_imports() -> List[str]:
    """`path:line imports module` for every import of a nero_ns module on a higher floor than the importer's."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if importer == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nero_ns."):
                if FLOORS[node.module.split(".")[1]] > FLOORS[importer]:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {node.module}")
    return found


def test_every_package_has_a_floor() -> None:
    names = {path.name.removesuffix(".py") for path in PACKAGE.iterdir() if path.suffix == ".py" or path.is_dir()}
    assert names - {"__init__", "__pycache__"} == set(FLOORS)


def test_no_module_imports_from_a_higher_floor() -> None:
    assert upward_imports() == []
