"""Fixtures shared by every test; importable helpers live in tests/support/.

The folder a test lives in is its marker (tests/unit → `unit`, tests/cli → `cli`, tests/system →
`system`), so `pytest -m unit` runs the fast library tests alone, and a folder the `-m`
expression leaves out is not even imported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.env import Cli, clear_flags

if TYPE_CHECKING:
    from collections.abc import Iterator

TESTS = Path(__file__).resolve().parent
KINDS = ("unit", "cli", "system")
_WORDS = re.compile(r"[()]|[^\s()]+")


def kind_of(path: Path) -> str | None:
    """`unit`, `cli` or `system` for a path inside that folder of tests/, else None."""
    try:
        first = Path(path).resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return None
    return first if first in KINDS else None


def excluded_by(markexpr: str, kind: str) -> bool:
    """Whether `-m markexpr` deselects every test of folder `kind`. Decided only for expressions
    made of folder markers alone (`unit`, `not system`, `unit or cli`); anything else: False, and
    pytest's own deselection decides test by test."""
    words = _WORDS.findall(markexpr)
    if not words or not set(words) <= {*KINDS, "and", "or", "not", "(", ")"}:
        return False
    # Only the whitelisted words above reach eval: marker names as booleans and the operators.
    try:
        return not eval(" ".join(words), {"__builtins__": {}}, {k: k == kind for k in KINDS})
    except SyntaxError:  # `-m "unit and"`: pytest reports the expression itself
        return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Skip importing a folder the `-m` expression excludes (collecting tests/cli and
    tests/system costs seconds that `pytest -m unit` should not pay)."""
    markexpr = config.getoption("markexpr", "") or ""
    kind = kind_of(collection_path)
    if markexpr and kind and excluded_by(markexpr, kind):
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The folder a test lives in is its marker: `pytest -m unit` runs tests/unit/ only."""
    for item in items:
        kind = kind_of(item.path)
        if kind:
            item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture
def sealbox_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "sealbox-home"
    monkeypatch.setenv("SEALBOX_HOME", str(home))
    return home


@pytest.fixture
def cli(sealbox_home: Path) -> Cli:
    return Cli(sealbox_home)


@pytest.fixture
def out_dir(tmp_path: Path) -> Iterator[Path]:
    out = tmp_path / "out"
    out.mkdir()
    yield out
    clear_flags(out)
