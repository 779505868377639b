"""What crosses between the parts of an acquisition, by name: sources, what the walk finds, tasks,
the workers' configuration, their results and the events they report."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

    from manifest.osio.spool import Spool, Spooled
    from manifest.previous import PreviousBundle
    from manifest.views import ViewContext


@dataclass(frozen=True)
class Source:
    """One thing to acquire: `path` here, `original` as the original system names it."""

    path: bytes
    original: bytes
    collector: str
    max_depth: int | None = None
    excludes: tuple[str, ...] = ()
    max_file_size: int | None = None
    since_ns: int | None = None
    windows: bool = False

    @property
    def whole(self) -> bool:
        """Walked without a depth limit or excludes: everything below it is its."""
        return self.max_depth is None and not self.excludes

    def excluder(self) -> Callable[[str, str], bool]:
        if not self.excludes:
            return lambda _full, _name: False
        rx = re.compile("|".join(fnmatch.translate(g) for g in self.excludes))
        return lambda full, name: bool(rx.match(full) or rx.match(name))


class DirId(NamedTuple):
    """A directory's identity: what pins a path to the very directory the walk listed."""

    device: int
    inode: int

    def __reduce__(self) -> tuple[Any, ...]:
        return (DirId, tuple(self))  # see Task.__reduce__


# Tuples with names: millions cross to the workers in pickles. A NamedTuple pickles through
# copyreg and its Python-level __getnewargs__ (3.4 us a task here, against 0.9 us for a plain
# tuple); the ones that cross in bulk say how to rebuild them instead (1.4 us).
class Found(NamedTuple):
    """One entry the walk yields, in walk order."""

    path: bytes  # where it is read here
    original: bytes  # as the original system names it
    source: int  # index of its Source
    size: int  # a file's size when the walk was asked for sizes, else 0
    listed_from: DirId | None  # the directory it was listed in; None for a source itself
    apart: bool  # its copy goes to data/long (a name differing from a sibling's only in case)
    is_file: bool = False  # a regular file when listed: the worker opens it before it stats it


class Task(NamedTuple):
    """One entry to acquire: what the walk found, with its item id."""

    id: int
    path: bytes
    original: bytes
    source: int
    listed_from: DirId | None
    apart: bool
    is_file: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (Task, tuple(self))  # the class and its fields: no copyreg detour per task


class CountKey(NamedTuple):
    status: str
    kind: str
    collector: str


class HardLink(NamedTuple):
    """A file item with more than one link, to be noted against the first item of its inode."""

    id: int
    device: int
    inode: int


@dataclass
class AcquireStats:
    items: int = 0
    files: int = 0
    bytes: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    by_collector: dict[str, int] = field(default_factory=dict)
    not_walked: list[str] = field(default_factory=list)  # pseudo filesystems met (not descended)
    case_collisions: int = 0  # copies put in data/long because the output ignores case
    unlisted_dirs: list[str] = field(default_factory=list)  # "path: why" of directories not listed


class ProgressSink:
    """What the acquisition reports as it goes; the CLI draws it, tests may count it."""

    def add_total(self, files: int, nbytes: int) -> None:
        """The walker found more work."""

    def advance(self, files: int, nbytes: int) -> None:
        """Items were acquired."""


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    """What every worker process is started with (inherited at fork, never pickled)."""

    bundle: bytes
    sources: list[Source]
    immutable: bool = False
    resolve_names: bool = True
    views: ViewContext | None = None
    spool: Spool | None = None  # where batch output goes when workers are separate processes
    previous: PreviousBundle | None = None  # a follow-up collection copies only what changed since
    fold_case: bool = False  # the output filesystem ignores case in names


# ------------------------------------------------------------------ worker events
@dataclass(frozen=True)
class WorkerEvent:
    """Something a worker noticed that goes to the acquisition log as a warning named `name`,
    with the event's fields."""

    name: ClassVar[str]

    def fields(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NameCaseCollision(WorkerEvent):
    """A copy went to data/long: its name differs from another's only in case, and the output
    filesystem ignores case."""

    name: ClassVar[str] = "name-case-collision"
    path: str
    stored_as: str


@dataclass(frozen=True)
class NoatimeNotPermitted(WorkerEvent):
    """O_NOATIME was refused; the worker reads without it from then on."""

    name: ClassVar[str] = "noatime-not-permitted"
    path: str
    detail: str = (
        "O_NOATIME needs file ownership or CAP_FOWNER; reading without it from now on in this worker"
    )


@dataclass(frozen=True)
class ImmutableFlagUnavailable(WorkerEvent):
    """The output filesystem would not take the immutable flag; copies stay read-only files."""

    name: ClassVar[str] = "immutable-flag-unavailable"
    detail: str


@dataclass
class BatchResult:
    """What a worker hands back for one batch."""

    lines: bytes = b""
    manifest: bytes = b""
    files: int = 0
    nbytes: int = 0  # payload bytes copied by this batch
    counts: dict[CountKey, int] = field(default_factory=dict)
    links: list[HardLink] = field(default_factory=list)
    events: list[WorkerEvent] = field(default_factory=list)
    views: list[bytes] = field(default_factory=list)  # the view parts for these items
    spooled: Spooled | None = None  # instead of lines, manifest and views: where they are in the spool
    leftover: list[Task] = field(default_factory=list)  # tasks handed back, not acquired here
    alone: bool = False  # the leftover's first task is a big file, to be a batch of its own
    dirs: list[bytes] = field(default_factory=list)  # output directories this batch made
