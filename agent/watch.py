"""The watch daemon: while a host is held, seal a follow-up bundle whenever its sources changed.

The first bundle is a full collection (or an existing bundle given as the start). From then on a
watchdog observer notes writes under the sources; every interval in which something was written,
a follow-up collection (`--previous` the last bundle) copies what is new or changed. Reads, ours
included, are not changes, and nothing under the output directory counts. SIGTERM or Ctrl-C
stop it between collections; a collection under way is finished first.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from collectors.collection import CollectionRequest, CollectionResult, run_collection
from manifest.osio.mountns import enter_noatime_namespace

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# A write, not a read: watchdog also reports opens, reads' closes and attribute changes.
CHANGES = frozenset(
    {EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED, EVENT_TYPE_DELETED, EVENT_TYPE_MOVED, EVENT_TYPE_CLOSED}
)


class _Changes(FileSystemEventHandler):
    def __init__(self, ignore: Path) -> None:
        self.ignore = str(ignore.resolve())
        self.seen = threading.Event()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in CHANGES:
            return
        path = str(event.src_path)
        if path == self.ignore or path.startswith(self.ignore + "/"):
            return  # our own bundles being written
        self.seen.set()


@dataclass
class Watch:
    """One watch: the request of the first collection, how often to look, and what came of it."""

    request: CollectionRequest
    interval: float
    on_bundle: Callable[[CollectionResult], None] = lambda _result: None
    bundles: list[Path] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> list[Path]:
        """Collect, then follow up on changes until `stop` is set; the bundles, in order."""
        changes = _Changes(self.request.out_dir)
        if self.request.private_mounts:
            # The observer lists every watched directory; in the noatime namespace (collect's
            # own, entered here first so the observer thread starts in it) no atime moves.
            enter_noatime_namespace([src.path for src in self.request.sources])
        observer = Observer()
        for src in self.request.sources:
            path = Path(src.path.decode("utf-8", "surrogateescape"))
            observer.schedule(changes, str(path if path.is_dir() else path.parent), recursive=path.is_dir())
        observer.start()  # before the first collection: a write during it is caught
        try:
            previous = self.request.previous
            if previous is None:
                previous = self._collect(self.request)
            else:
                changes.seen.set()  # the start bundle may be old: look once at what changed
            while not self.stop.wait(self.interval):
                if changes.seen.is_set():
                    changes.seen.clear()
                    previous = self._collect(replace(self.request, previous=previous, resume=None))
        finally:
            observer.stop()
            observer.join()
        return self.bundles

    def _collect(self, request: CollectionRequest) -> Path:
        result = run_collection(request)
        self.bundles.append(result.bundle)
        self.on_bundle(result)
        return result.bundle


@contextlib.contextmanager
def stop_on_signals(watch: Watch) -> Iterator[Watch]:
    """SIGTERM and SIGINT end the watch between collections instead of cutting one short."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda _signum, _frame: watch.stop.set())
    try:
        yield watch
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
