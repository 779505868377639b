"""Fixtures shared by every test; importable helpers live in tests/support/.

The folder a test lives in is its marker (tests/unit → `unit`, tests/cli → `cli`, tests/system →
`system`), so `pytest -m unit` runs the fast library tests alone, and a folder the `-m`
expression leaves out is not even imported.
"""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session", autouse=True)
def _xtables_lock_per_worker(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Under pytest-xdist, legacy iptables in this worker's namespaces locks a file of the worker's
    own. Its default, /run/xtables.lock, is one for the whole machine, and iptables without -w
    fails at once when another worker's namespace holds it; each namespace has tables of its own,
    so there is nothing for two workers to serialise."""
    if os.environ.get("PYTEST_XDIST_WORKER") and "XTABLES_LOCKFILE" not in os.environ:
        os.environ["XTABLES_LOCKFILE"] = str(tmp_path_factory.getbasetemp() / "xtables.lock")


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
