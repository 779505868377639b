"""Artifact kinds: every registered kind parses, describes, plans and prepares a run the same way,
and the documented example kind and section work as their module says."""

from __future__ import annotations

import importlib
import json
import os
from typing import TYPE_CHECKING

import pytest

import collectors.kinds
from collectors.artifacts import DefinitionError, FieldCheck, parse_artifact
from collectors.expand import Plan, Target, plan_sources
from collectors.kind import ArtifactKind, KindRegistry, RunSetup
from collectors.kinds import KINDS
from collectors.kinds.example import ExampleKind, uptime
from collectors.kinds.files import FilesKind

if TYPE_CHECKING:
    from pathlib import Path


def _planted(root: Path, pattern: str) -> None:
    """A file at `pattern` (a plain path, or one in a user's home) under the fixture `root`."""
    where = root / "home/alice" / pattern[2:] if pattern.startswith("~/") else root / pattern.lstrip("/")
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text("planted\n")


@pytest.mark.parametrize("kind", list(KINDS), ids=KINDS.names())
def test_every_registered_kind_parses_describes_and_prepares_its_example(
    kind: ArtifactKind, tmp_path: Path
) -> None:
    assert kind.__doc__ is None or kind.__doc__.strip()
    assert type(kind).__module__.startswith("collectors.kinds.")
    assert importlib.import_module(type(kind).__module__).__doc__  # what the kind is, for its reader
    assert kind.name and kind.summary and KINDS[kind.name] is kind
    art = parse_artifact(tmp_path / "x.toml", 0, dict(kind.example))
    assert art.kind == kind.name and art.kind_of is kind
    shown = art.as_dict()
    assert shown["kind"] == kind.name and kind.describe(art).items() <= shown.items()
    json.dumps(shown)
    # Its paths are planned into sources exactly when the kind reads paths.
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("alice:x:1000:1000::/home/alice:/bin/sh\n")
    for pattern in art.paths:
        _planted(root, pattern)
    plan = plan_sources([art], Target(os.fsencode(root), "linux", False))
    assert bool(plan.sources) == kind.reads_paths
    # A run with and without live volatile state: each prepares without failing.
    for live in (True, False):
        run = RunSetup(Plan(), take_volatile=live)
        kind.prepare([art], run)
        assert all(callable(step) for step in run.post)
        assert run.volatile is None or callable(run.volatile)


@pytest.mark.parametrize("kind", list(KINDS), ids=KINDS.names())
def test_every_registered_kind_refuses_a_definition_against_its_rules(
    kind: ArtifactKind, tmp_path: Path
) -> None:
    broken = dict(kind.example)
    if kind.reads_paths:
        broken.pop("paths")  # a kind that reads paths needs them
    else:
        broken["paths"] = ["/etc/hosts"]  # one that does not refuses them
    with pytest.raises(DefinitionError, match="field 'paths'"):
        parse_artifact(tmp_path / "x.toml", 0, broken)


def test_a_kind_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        KindRegistry([FilesKind(), FilesKind()])


def test_the_example_kind_checks_fields_and_adds_a_post_step_once_registered(tmp_path: Path) -> None:
    registry = KindRegistry([*KINDS, ExampleKind()])
    assert registry.names()[-1] == "example" and "example" not in KINDS.names()  # not live
    kind = registry["example"]
    table = dict(kind.example)
    assert (
        kind.check(FieldCheck(tmp_path / "x.toml", "artifact", table), tuple(table["paths"]), ("linux",))
        == ()
    )
    with pytest.raises(DefinitionError, match="field 'paths'"):
        kind.check(FieldCheck(tmp_path / "x.toml", "artifact", table), ("relative/path",), ("linux",))
    run = RunSetup(Plan(), take_volatile=False)
    kind.prepare([], run)
    assert len(run.post) == 1
    assert collectors.kinds.__doc__ and "example.py" in collectors.kinds.__doc__


def test_the_example_section_is_plain_integer_data() -> None:
    data = uptime()
    assert isinstance(data["uptime_ns"], int) and data["uptime_ns"] > 0
