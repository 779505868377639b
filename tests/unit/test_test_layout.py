"""The test suite's own house rules: every test module in unit/, cli/ or system/ (its marker), no
test module or helper imports a test module or conftest, and `-m` skips only whole folders it
excludes."""

from __future__ import annotations

import ast

import pytest

from tests.support.env import KINDS, TESTS, excluded_by, kind_of


def _modules() -> list:
    return sorted(p for p in TESTS.rglob("*.py") if "assets" not in p.relative_to(TESTS).parts)


def test_every_test_module_lives_in_a_marker_folder() -> None:
    strays = [p for p in _modules() if p.name.startswith("test_") and kind_of(p) is None]
    assert strays == []


def test_no_module_imports_a_test_module_or_conftest() -> None:
    bad = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if "conftest" in parts or (parts[0] == "tests" and len(parts) > 1 and parts[1] in KINDS):
                    bad.append(f"{path.relative_to(TESTS)}: {name}")
    assert bad == [], "import helpers from tests.support, fixtures come from tests/conftest.py"


@pytest.mark.parametrize(
    ("markexpr", "kind", "excluded"),
    [
        ("unit", "cli", True),
        ("unit", "unit", False),
        ("not system", "system", True),
        ("not system", "cli", False),
        ("unit or cli", "system", True),
        ("(unit or cli) and not unit", "unit", True),
        ("slow", "unit", False),  # not a folder marker: pytest decides test by test
        ("unit and", "cli", False),  # malformed: pytest reports it
    ],
)
def test_marker_expression_excludes_whole_folders_only_when_sure(
    markexpr: str, kind: str, excluded: bool
) -> None:
    assert excluded_by(markexpr, kind) is excluded


def test_kind_of_reads_the_folder_under_tests_not_the_checkout_path() -> None:
    assert kind_of(TESTS / "unit" / "test_x.py") == "unit"
    assert kind_of(TESTS / "support" / "env.py") is None
    assert kind_of(TESTS.parent.parent / "cli" / "tests" / "test_x.py") is None
