"""Progress on a terminal (rich): files, bytes, rate, ETA. Silent when stderr is not a terminal."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from collectors.acquire import ProgressSink, Skip, walk

if TYPE_CHECKING:
    from collectors.acquire import Source


class RichProgress(ProgressSink):
    """Two bars (files, bytes); totals come from a quick metadata-only pre-scan thread."""

    def __init__(self, sources: list[Source]) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("•"),
            DownloadColumn(),
            TextColumn("•"),
            TransferSpeedColumn(),
            TextColumn("• ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.files: TaskID = self.progress.add_task("files", total=None)
        self.bytes: TaskID = self.progress.add_task("bytes", total=None, visible=False)
        self._sources = sources
        self._stop = threading.Event()
        self._scanner = threading.Thread(target=self._scan, daemon=True)

    def _scan(self) -> None:
        files = nbytes = 0
        for found in walk(self._sources, skip=Skip([]), sizes=True):
            size = found.size
            if self._stop.is_set():
                return
            files += 1
            nbytes += size
            if files % 2000 == 0:
                self.progress.update(self.files, total=files)
        self.progress.update(self.files, total=files)
        self.progress.update(self.bytes, total=nbytes)

    def __enter__(self) -> RichProgress:
        self.progress.start()
        self._scanner.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.progress.stop()

    def advance(self, files: int, nbytes: int) -> None:
        self.progress.advance(self.files, files)
        self.progress.update(self.files, description=f"files ({_human(self._bytes_done(nbytes))})")

    def _bytes_done(self, nbytes: int) -> int:
        self.progress.advance(self.bytes, nbytes)
        return int(self.progress.tasks[self.bytes].completed)


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
