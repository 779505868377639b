"""The main side: walk, hand batches to the workers, and merge their results in id order.

items.jsonl, the manifest and the views grow in item-id order whatever order workers finish in;
counts, hard-link notes and the workers' events are folded in here, in the main process.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from collectors.acquire import plan, worker
from collectors.acquire.records import AcquireStats, NameCaseCollision, ProgressSink, WorkerConfig
from collectors.acquire.walk import Skip, text, walk
from manifest.bundle import ignores_case
from manifest.format.items import item_line
from manifest.osio.parallel import few_collections, ordered_map
from manifest.osio.spool import Spool

if TYPE_CHECKING:
    from collections.abc import Iterator

    from collectors.acquire.records import BatchResult, Found, HardLink, Source
    from manifest.bundle import BundleWriter
    from manifest.previous import PreviousBundle


class Merger:
    """Folds each batch's result into the bundle and the stats, in the order they come."""

    def __init__(
        self,
        writer: BundleWriter,
        stats: AcquireStats,
        progress: ProgressSink,
        spool: Spool | None,
        links: dict[tuple[int, int], int] | None,
    ) -> None:
        self.writer, self.stats, self.progress, self.spool = writer, stats, progress, spool
        self.first_link: dict[tuple[int, int], int] = dict(links or {})  # (device, inode) -> item id

    def walk_error(self, path: bytes, why: str) -> None:
        self.writer.log.warning("directory-unreadable", path=text(path), error=why)
        self.stats.unlisted_dirs.append(f"{text(path)}: {why}")

    def add(self, res: BatchResult) -> None:
        writer = self.writer
        if res.spooled is not None:
            self._from_spool(res)
        if res.lines:
            lines = note_links(res.lines, res.links, self.first_link) if res.links else res.lines
            writer.append_items(lines, res.manifest, res.files, res.nbytes)
        if res.views:
            writer.append_views(res.views)
        if res.dirs:
            writer.note_payload_dirs(res.dirs)
        self._count(res)
        for event in res.events:
            writer.log.warning(event.name, **event.fields())
            if isinstance(event, NameCaseCollision):
                self.stats.case_collisions += 1

    def _from_spool(self, res: BatchResult) -> None:
        """Items and manifest lines are copied from the spool in the kernel; the lines are read
        back only when hard links must be noted in them (rare)."""
        assert self.spool is not None and res.spooled is not None
        items, manifest, *views = res.spooled.ranges()
        if res.links:
            res.lines, res.manifest = self.spool.read(*items), self.spool.read(*manifest)
        else:
            self.writer.append_items_from(self.spool, items, manifest, res.files, res.nbytes)
        self.writer.views.append_from(self.spool, views)
        self.spool.release(res.spooled)

    def _count(self, res: BatchResult) -> None:
        stats = self.stats
        done = 0
        for key, n in res.counts.items():
            done += n
            stats.by_status[key.status] = stats.by_status.get(key.status, 0) + n
            stats.by_kind[key.kind] = stats.by_kind.get(key.kind, 0) + n
            stats.by_collector[key.collector] = stats.by_collector.get(key.collector, 0) + n
        stats.items += done
        stats.files += res.files
        stats.bytes += res.nbytes
        self.progress.advance(done, res.nbytes)


def acquire(
    writer: BundleWriter,
    sources: list[Source],
    *,
    workers: int | None = None,
    progress: ProgressSink | None = None,
    resolve_names: bool = True,
    skip: set[bytes] | None = None,
    links: dict[tuple[int, int], int] | None = None,
    previous: PreviousBundle | None = None,
) -> AcquireStats:
    """Acquire every source into the bundle; items and manifest lines stream out in id order.
    `skip`: original paths already acquired (a resumed run); `links`: their hard links;
    `previous`: the bundle a follow-up collection builds on (unchanged files are not copied)."""
    progress = progress or ProgressSink()
    stats = AcquireStats()
    workers = max(1, workers or os.cpu_count() or 1)
    spool = Spool(writer.path) if workers > 1 else None
    config = WorkerConfig(
        bundle=os.fsencode(writer.path),
        sources=sources,
        immutable=writer.immutable,
        resolve_names=resolve_names,
        views=writer.view_context,
        spool=spool,
        previous=previous,
        fold_case=ignores_case(writer.path),
    )
    merger = Merger(writer, stats, progress, spool, links)
    # The bundle being written, and the --out directory holding it, are never evidence of the
    # host: an --out inside a source would otherwise collect the bundle into itself.
    own = Skip([writer.path, writer.path.parent])
    found: Iterator[Found] = walk(sources, merger.walk_error, own)
    if skip:
        found = (f for f in found if f.original not in skip)
    work = plan.batches(found, writer.next_id, progress)
    try:
        with few_collections():
            for result in ordered_map(
                worker.run_batch,
                work,
                workers,
                worker.start_worker,
                (config,),
                more=lambda res: plan.handed_back(res, workers),
            ):
                merger.add(result)
    finally:
        if spool is not None:
            spool.close()
    if own.skipped:
        writer.log.info("output-not-collected", paths=[text(p) for p in own.skipped])
    if own.not_walked:
        stats.not_walked = [text(p) for p in own.not_walked]
        writer.log.warning(
            "pseudo-filesystem-not-walked",
            paths=stats.not_walked,
            detail="kernel state, not stored files (volatile state is captured on its own)",
        )
    return stats


def note_links(lines: bytes, links: list[HardLink], first: dict[tuple[int, int], int]) -> bytes:
    """Hard links are copied like any file, and noted so the shared inode is visible."""
    notes: dict[str, str] = {}
    for link in links:
        key = (link.device, link.inode)
        if key in first:
            notes[f"{link.id:08d}"] = f"hard link: shares inode with item {first[key]:08d}"
        else:
            first[key] = link.id
    if not notes:
        return lines
    out = []
    for line in lines.splitlines(keepends=True):
        item = json.loads(line)
        if item["id"] in notes:
            item["note"] = "; ".join(filter(None, [item.get("note"), notes[item["id"]]]))
            line = item_line(item)
        out.append(line)
    return b"".join(out)
