"""What an artifact kind is (`ArtifactKind`) and the registry the kinds are kept in.

An artifact's `kind` (files, volatile, email...) decides which of its TOML fields it takes, how
`sealbox artifacts show` describes it, and what a run does with it beyond acquiring its paths.
Each kind is one module in `collectors/kinds/` with one registration there; the documented
example to copy is `collectors/kinds/example.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from collectors.artifacts import Artifact, FieldCheck
    from collectors.expand import Plan
    from manifest.bundle import BundleWriter


@dataclass
class RunSetup:
    """What the kinds of a profile's artifacts add to one run (filled in by `ArtifactKind.prepare`)."""

    plan: Plan  # the sources planned from path globs; kinds add what they matched and notes
    take_volatile: bool  # the root is this live system, or --volatile forces it
    volatile_sections: list[str] = field(default_factory=list)  # taken first, in volatility order
    email_collectors: set[str] = field(default_factory=set)  # collectors whose copies are indexed
    volatile: Callable[[BundleWriter], list[str]] | None = None  # the step taking the sections
    post: list[Callable[[BundleWriter, Path], None]] = field(default_factory=list)  # after the files


class ArtifactKind:
    """One kind of artifact. Subclasses set `name` and `summary` and override what differs."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for `sealbox artifacts` and the docs
    reads_paths: ClassVar[bool] = True  # its `paths` globs become sources acquired as files
    example: ClassVar[dict[str, Any]]  # a minimal valid [[artifact]] table of this kind

    def check(self, check: FieldCheck, paths: tuple[str, ...], oses: tuple[str, ...]) -> tuple[str, ...]:
        """Check the fields this kind takes or refuses (raise `check.fail(...)`); return its
        volatile sections (none by default)."""
        if not paths:
            raise check.fail("paths", f"missing (a {self.name} artifact needs at least one path glob)")
        if check.table.get("sections"):
            raise check.fail("sections", "only a volatile artifact has sections")
        for path in paths:
            check.path_glob(path, oses)
        return ()

    def describe(self, art: Artifact) -> dict[str, Any]:
        """This kind's own fields of `art`, for `artifacts show` and `--json`."""
        return {
            "paths": list(art.paths),
            "excludes": list(art.excludes),
            "max_file_size": art.max_file_size,
            "max_depth": art.max_depth,
        }

    def prepare(self, artifacts: list[Artifact], run: RunSetup) -> None:
        """What a run does for these artifacts (all of this kind) besides acquiring their paths."""


class KindRegistry:
    """The kinds an artifact may name, each registered once, in a fixed order."""

    def __init__(self, kinds: Iterable[ArtifactKind]) -> None:
        self._kinds: dict[str, ArtifactKind] = {}
        for kind in kinds:
            if kind.name in self._kinds:
                raise ValueError(f"artifact kind {kind.name!r} registered twice")
            self._kinds[kind.name] = kind

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def get(self, name: str) -> ArtifactKind | None:
        return self._kinds.get(name)

    def __getitem__(self, name: str) -> ArtifactKind:
        return self._kinds[name]

    def __iter__(self) -> Iterator[ArtifactKind]:
        return iter(self._kinds.values())

    def grouped(self, artifacts: Iterable[Artifact]) -> Iterator[tuple[ArtifactKind, list[Artifact]]]:
        """(kind, its artifacts in order) for each registered kind that has any."""
        for kind in self:
            mine = [a for a in artifacts if a.kind == kind.name]
            if mine:
                yield kind, mine
