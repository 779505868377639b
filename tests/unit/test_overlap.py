"""The overlap contract between planned sources and the walk: each path once, under the most
specific source, whatever order the sources were found in."""

from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING

from collectors.acquire import Source, nest_sources, walk

if TYPE_CHECKING:
    from pathlib import Path


def _source(path: Path, collector: str, **kw: object) -> Source:
    return Source(os.fsencode(path), os.fsencode(path), collector, **kw)  # type: ignore[arg-type]


def test_nested_sources_go_first_and_the_directory_excludes_them(tmp_path: Path) -> None:
    logs = tmp_path / "log"
    (logs / "audit").mkdir(parents=True)
    (logs / "audit/audit.log").write_text("a\n")
    (logs / "syslog").write_text("s\n")
    (logs / "auth.log").write_text("x\n")
    found = [
        _source(logs, "logs/all"),
        _source(logs / "audit", "audit/linux"),
        _source(logs / "auth.log", "auth/log"),
    ]
    nested = nest_sources(found, [True, True, False])
    assert [s.collector for s in nested] == ["audit/linux", "auth/log", "logs/all"]
    assert nested[-1].excludes == (str(logs / "audit"), str(logs / "auth.log"))
    by_path = {}
    for f in walk(nested):
        assert f.path not in by_path, f.path  # each path once
        by_path[f.path] = nested[f.source].collector
    assert by_path[os.fsencode(logs / "audit/audit.log")] == "audit/linux"
    assert by_path[os.fsencode(logs / "auth.log")] == "auth/log"
    assert by_path[os.fsencode(logs / "syslog")] == "logs/all"


def test_a_source_inside_a_directory_walked_whole_is_left_out_and_a_file_named_twice_is_taken_once(
    tmp_path: Path,
) -> None:
    (tmp_path / "d/sub").mkdir(parents=True)
    (tmp_path / "d/sub/f").write_text("f\n")
    (tmp_path / "one").write_text("1\n")
    sources = [
        _source(tmp_path / "one", "a"),
        _source(tmp_path / "d", "b"),
        _source(tmp_path / "d/sub", "c"),  # inside d, walked whole before it: left out
        _source(tmp_path / "one", "d"),  # the same file again: left out
    ]
    seen = Counter(f.path for f in walk(sources))
    assert set(seen.values()) == {1}
    assert {sources[f.source].collector for f in walk(sources)} == {"a", "b"}
