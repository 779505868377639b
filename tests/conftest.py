"""Fixtures shared by every test; importable helpers live in tests/support/.

The folder a test lives in is its marker (tests/unit → `unit`, tests/cli → `cli`, tests/system →
`system`), so `pytest -m unit` runs the fast library tests alone, and a folder the `-m`
expression leaves out is not even imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.env import Cli, clear_flags, excluded_by, kind_of

# One embedded vault per session for every vault test module (each module importing the
# session fixture itself had started a server of its own, seven per run).
from tests.support.vault_server import vault_fixture  # noqa: F401

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


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
