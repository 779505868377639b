"""The floor plan holds: every import runs downward (manifest/__init__.py lists the floors)."""

from __future__ import annotations

import ast

import pytest

from tests.support.env import REPO

# Higher number = higher floor. A module may import from its own floor or any floor below.
FLOORS: dict[str, int] = {
    "agent": 9,
    "collectors": 8,
    "manifest.handover": 7,
    "manifest.vault": 7,
    "manifest.verify": 6,
    "manifest.bundle": 5,
    "manifest.resume": 5,
    "manifest.previous": 5,
    "manifest.views": 4,
    "manifest.hashing": 4,
    "manifest.signing": 4,
    "manifest.acquisition_log": 4,
    "manifest.format": 3,
    "manifest.osio": 3,
    "manifest.errors": 1,
    "manifest.findings": 1,
    "manifest": 1,  # the package itself: version and tool name
}
PACKAGES = ("agent", "collectors", "manifest")


def floor_of(module: str) -> tuple[str, int] | None:
    """The most specific floor a dotted module name belongs to."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in FLOORS:
            return name, FLOORS[name]
    return None


def module_name(path: str) -> str:
    name = path.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def imports_of(tree: ast.AST) -> list[tuple[int, str]]:
    """Every import, lazy ones inside functions included, as (line, dotted module)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # `from manifest import bagit` names a submodule, which has a floor of its own
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def sources() -> list[str]:
    return sorted(str(p.relative_to(REPO)) for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))


def upward_imports(path: str, text: str) -> list[str]:
    here = floor_of(module_name(path))
    assert here is not None, f"{path} has no floor in FLOORS"
    problems = []
    for line, target in imports_of(ast.parse(text)):
        there = floor_of(target)
        if there is None or target.split(".")[0] not in PACKAGES:
            continue
        if there[1] > here[1]:
            problems.append(f"{path}:{line}: {here[0]} imports {target} ({there[0]} is a floor up)")
    return problems


@pytest.mark.parametrize("path", sources())
def test_imports_run_downward(path: str) -> None:
    assert upward_imports(path, (REPO / path).read_text()) == []


def test_the_check_catches_an_upward_import() -> None:
    assert upward_imports("manifest/hashing.py", "from collectors.fsmeta import Meta\n")
    assert upward_imports("manifest/signing/custody.py", "def f():\n    import manifest.verify\n")
    assert upward_imports("manifest/osio/spool.py", "from manifest import bundle\n")
    assert not upward_imports("manifest/verify/rules.py", "from manifest.signing import keys\n")


def test_every_folder_says_what_it_owns() -> None:
    for pkg in PACKAGES:
        for init in (REPO / pkg).rglob("__init__.py"):
            doc = ast.get_docstring(ast.parse(init.read_text()))
            assert doc and len(doc) > 20, f"{init.relative_to(REPO)} has no docstring"
