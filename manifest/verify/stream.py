"""The payload check streamed, for the usual bundle: no index at all.

sealbox writes manifest-sha256.txt in the order of items.jsonl, so in a bundle as sealed the n-th
manifest line and the n-th item with a stored copy name the same file with the same digest. This
check reads both side by side (the recorded size goes with each file to the workers, which check
it before they read), while the workers hash. It proves data/ holds exactly the listed files by
counting: no link or other non-file is in data/ (so no path can lead out of it), every listed file
opened as a distinct regular file (distinct inode numbers, on one device), and as many were opened
as data/ holds. Whenever any of that does not hold — a malformed or out-of-step line, a missing or
unreadable file, a count that differs — it gives up and the exact, indexed check runs instead;
what it reports is only what it proved: payload-changed, payload-size-mismatch and payload-oxum.
"""

from __future__ import annotations

import heapq
import os
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from manifest.findings import Finding, FindingKind
from manifest.format import bagit
from manifest.format.items import parse_item
from manifest.hashing import BatchCheck, Expected, check_sized_batch
from manifest.osio.parallel import few_collections, give_back_freed_memory, ordered_map
from manifest.verify.index import LINE_CAP, bad_fields, bounded_lines, fast_pairs, is_unicode, line_blocks
from manifest.verify.model import ITEMS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from manifest.verify.model import BundleModel

K = FindingKind
_BATCH = 512


class GiveUp(Exception):
    """The bundle is not in the shape the streamed check can prove: use the exact check."""


@dataclass
class Streamed:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0  # payload files read
    nbytes: int = 0
    items: int = 0
    opened: int = 0  # regular files opened, read or not


def stream_check(bundle: BundleModel) -> Streamed | None:
    """The payload and item checks of a bundle whose manifest and items.jsonl are in step; None
    when the exact, indexed check must run instead (nothing is reported then)."""
    listing = bundle.payload.listing
    if listing.specials or listing.more_specials:
        return None
    if not (bundle.within_cap(bagit.MANIFEST) and bundle.within_cap(ITEMS)):
        return None
    from manifest.verify.rules import parse_oxum

    oxum = parse_oxum(bundle.info.get("Payload-Oxum", ""))
    if oxum is None:
        return None
    workers = max(1, bundle.workers or os.cpu_count() or 1)
    # Many batches for every worker, so that a few big files still spread over all of them.
    size = min(_BATCH, max(1, -(-listing.files // (workers * 16))))
    if listing.files <= size:
        workers = 1  # one batch: starting workers would cost more than it saves
    counts = Streamed()
    base = str(bundle.path) + "/"
    results: list[BatchCheck] = []
    inodes: list[array[int]] = []
    devices: set[int] = set()
    try:
        with few_collections():
            for result in ordered_map(_hash_batch, _in_step(bundle, base, counts, size), workers):
                if result.missing or any(p.kind == "unreadable" for p in result.problems):
                    return None
                inodes.append(array("Q", result.inodes))
                devices |= result.devices
                counts.files += result.files
                counts.nbytes += result.nbytes
                result.inodes = []
                counts.opened += result.opened
                if result.problems:
                    results.append(result)
                if len(inodes) % 64 == 0:
                    give_back_freed_memory()
    except GiveUp:
        return None
    except OSError:
        return None  # the exact check says which file could not be read
    if counts.opened != listing.files or len(devices) > 1 or not _distinct(inodes):
        return None
    disk_bytes = counts.nbytes
    for result in results:
        for problem in result.problems:
            disk_bytes += problem.size
            if problem.kind == "size":
                counts.findings.append(
                    Finding(
                        K.PAYLOAD_SIZE_MISMATCH,
                        problem.rel,
                        f"size on disk is not the size recorded in {ITEMS}: not read",
                        problem.detail,
                        problem.found,
                    )
                )
            else:
                counts.findings.append(
                    Finding(
                        K.PAYLOAD_CHANGED,
                        problem.rel,
                        f"content differs from {bagit.MANIFEST}",
                        problem.detail,
                        problem.found,
                    )
                )
    if oxum != (disk_bytes, listing.files):
        counts.findings.append(
            Finding(
                K.PAYLOAD_OXUM,
                "bag-info.txt",
                "Payload-Oxum (bytes.files) does not match data/",
                bundle.info.get("Payload-Oxum"),
                f"{disk_bytes}.{listing.files}",
            )
        )
    return counts


def _distinct(runs: list[array[int]]) -> bool:
    """No inode number twice across the sorted runs (merged lazily: memory stays 8 bytes a file)."""
    last = -1
    for ino in heapq.merge(*runs):
        if ino == last:
            return False
        last = ino
    return True


def _hash_batch(task: tuple[str, list[Expected]]) -> BatchCheck:
    return check_sized_batch(*task)


def _in_step(
    bundle: BundleModel, base: str, counts: Streamed, size: int
) -> Iterator[tuple[str, list[Expected]]]:
    """Batches of (path, digest, recorded size), the manifest and items.jsonl read side by side;
    GiveUp at the first line that is not as sealbox writes it."""
    items = _stored_items(bundle, counts)
    batch: list[Expected] = []
    for _first, block in line_blocks(bundle.path / bagit.MANIFEST, LINE_CAP):
        if block is None:
            raise GiveUp
        count = block.count(b"\n") + (not block.endswith(b"\n"))
        pairs = fast_pairs(block, count)
        if pairs is None or any(("//" in rel or "/./" in rel or rel.endswith("/.")) for _d, rel in pairs):
            raise GiveUp
        for digest, rel in pairs:
            item = next(items, None)
            if item is None or item[0] != rel or item[1] != digest:
                raise GiveUp
            batch.append(Expected(rel, digest, item[2]))
            if len(batch) >= size:
                yield base, batch
                batch = []
    if next(items, None) is not None:
        raise GiveUp
    if batch:
        yield base, batch


def _stored_items(bundle: BundleModel, counts: Streamed) -> Iterator[tuple[str, str, int]]:
    """(stored_as, sha256, size) of each item with a stored copy, in file order; every item is
    checked as the exact check would, and GiveUp at the first it would report."""
    last_id = ""
    for _number, raw in bounded_lines(bundle.path / ITEMS, LINE_CAP):
        if raw is None:
            raise GiveUp
        try:
            item = parse_item(raw)
        except ValueError:
            raise GiveUp from None
        if not isinstance(item, dict):
            raise GiveUp
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id or item_id <= last_id or not is_unicode(item_id):
            raise GiveUp
        last_id = item_id
        if bad_fields(item):
            raise GiveUp
        counts.items += 1
        stored = item.get("stored_as")
        if stored:
            sha, size = item.get("sha256"), item.get("size")
            if not isinstance(sha, str) or not isinstance(size, int):
                raise GiveUp
            yield stored, sha, size
