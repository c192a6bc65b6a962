"""Layer rules checked from the source: the domain and the application import no framework."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "gateway"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports"
            assert node.module is not None
            found.add(node.module)
    return found


def violations(root: Path, allowed: tuple[str, ...]) -> dict[str, set[str]]:
    """Modules under `root` importing anything but the standard library and `allowed`."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        bad = {
            name
            for name in imported_modules(path)
            if name.split(".")[0] not in sys.stdlib_module_names
            and not any(name == a or name.startswith(a + ".") for a in allowed)
        }
        if bad:
            found[str(path.relative_to(root))] = bad
    return found


def test_the_layers_have_modules_to_check() -> None:
    assert len(list((SRC / "domain").glob("*.py"))) > 5
    assert len(list((SRC / "application").glob("*.py"))) > 3


def test_domain_imports_only_the_standard_library_and_itself() -> None:
    assert violations(SRC / "domain", ("gateway.domain",)) == {}


def test_application_imports_only_the_standard_library_domain_and_itself() -> None:
    allowed = ("gateway.domain", "gateway.application")
    assert violations(SRC / "application", allowed) == {}


@pytest.mark.parametrize(
    "line",
    [
        "import sqlalchemy",
        "from litestar import get",
        "import gateway.adapters.crypto",
        "from gateway.application.ports import Clock",
        "from gateway import config",
    ],
)
def test_the_check_reports_a_forbidden_import(tmp_path: Path, line: str) -> None:
    (tmp_path / "ok.py").write_text(
        "import os\nfrom datetime import UTC\nimport gateway.domain.x\n"
    )
    (tmp_path / "bad.py").write_text(f"import json\n{line}\n")
    found = violations(tmp_path, ("gateway.domain",))
    assert list(found) == ["bad.py"]
    assert len(found["bad.py"]) == 1
