"""Fixtures shared by every test; importable helpers live in tests/support/."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.env import Cli, clear_flags

# One embedded vault per session for every vault test module (each module importing the
# session fixture itself had started a server of its own, seven per run).
from tests.support.vault_server import vault_fixture  # noqa: F401

if TYPE_CHECKING:
    from collections.abc import Iterator

_KINDS = ("unit", "cli", "system")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The folder a test lives in is its marker: `pytest -m unit` runs tests/unit/ only."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for kind in _KINDS:
            if kind in parts:
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
