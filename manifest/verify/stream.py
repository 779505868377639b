"""The payload check streamed, for the usual bundle: no index at all.

sealbox writes manifest-sha256.txt in the order of items.jsonl, so in a bundle as sealed the n-th
manifest line and the n-th item with a stored copy name the same file with the same digest. The
main process only cuts both files into matching chunks (bytes, never parsed there); each worker
parses its chunk's manifest lines and items, proves they agree, and hashes the files (checking the
recorded size before it reads). It proves data/ holds exactly the listed files by
counting: no link or other non-file is in data/ (so no path can lead out of it), every listed file
opened as a distinct regular file (distinct inode numbers, on one device), and as many were opened
as data/ holds. Whenever any of that does not hold — a malformed or out-of-step line, a missing or
unreadable file, a count that differs — it gives up and the exact, indexed check runs instead;
what it reports is only what it proved: payload-changed, payload-size-mismatch and payload-oxum.
"""

from __future__ import annotations

import bisect
import heapq
import os
import re
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import orjson

from manifest.findings import Finding, FindingKind
from manifest.format import bagit
from manifest.format.items import KINDS, STATUSES
from manifest.hashing import BatchCheck, Expected, check_sized_batch
from manifest.osio.parallel import few_collections, give_back_freed_memory, ordered_map
from manifest.verify.index import LINE_CAP, fast_pairs, line_blocks
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
    last_id = ""
    try:
        with few_collections():
            for chunk in ordered_map(_check_chunk, _chunks(bundle, base, size), workers):
                if chunk.items and chunk.first_id <= last_id:
                    return None  # out of order across chunks: the exact check says where
                last_id = chunk.last_id or last_id
                counts.items += chunk.items
                result = chunk.check
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


class Chunk(NamedTuple):
    """One worker's share: whole manifest lines and the whole items.jsonl lines that should hold
    exactly their items with a stored copy (the main process only cuts the files, it parses
    nothing: the worker proves the two agree)."""

    base: str  # the bundle's path with a trailing slash
    manifest: bytes
    items: bytes


@dataclass
class ChunkCheck:
    check: BatchCheck
    items: int = 0
    first_id: str = ""
    last_id: str = ""


# How sealbox writes an item with a stored copy (compact JSON). Only used to cut the files into
# chunks; the worker parses every line, so a line written otherwise makes a chunk that does not
# agree with its manifest lines (GiveUp), never a wrong answer.
_STORED_MARK = re.compile(rb'"stored_as":"')
_KINDS = frozenset(KINDS)
_STATUSES = frozenset(STATUSES)
_DIGEST = re.compile(r"[0-9a-f]{64}")


def _lines(block: bytes) -> list[bytes]:
    lines = block.split(b"\n")
    if block.endswith(b"\n"):
        lines.pop()
    return lines


def _check_chunk(chunk: Chunk) -> ChunkCheck:
    """Worker side: parse the chunk's manifest lines and items, check them as the exact check
    would (GiveUp at the first it would report), then hash the files."""
    pairs = fast_pairs(chunk.manifest, len(_lines(chunk.manifest))) if chunk.manifest else []
    if pairs is None:
        raise GiveUp
    for _digest, rel in pairs:
        if "//" in rel or "/./" in rel or rel.endswith("/.") or len(rel) > LINE_CAP - 66:
            raise GiveUp
    expected: list[Expected] = []
    out = ChunkCheck(BatchCheck())
    last = ""
    loads = orjson.loads
    for raw in _lines(chunk.items):
        if len(raw) > LINE_CAP:
            raise GiveUp
        try:
            # orjson never gives a string with a lone surrogate: names and ids are valid text.
            item = loads(raw)
        except orjson.JSONDecodeError:
            raise GiveUp from None  # the exact check says what is wrong with the line
        if type(item) is not dict:
            raise GiveUp
        item_id = item.get("id")
        if type(item_id) is not str or not item_id or item_id <= last:
            raise GiveUp
        if not last:
            out.first_id = item_id
        last = item_id
        stored, sha, size = item.get("stored_as"), item.get("sha256"), item.get("size")
        if (
            (size is not None and (type(size) is not int or size < 0))
            or ((kind := item.get("kind")) is not None and kind not in _KINDS)
            or ((status := item.get("status")) is not None and status not in _STATUSES)
        ):
            raise GiveUp
        if stored is None:
            if sha is not None and (type(sha) is not str or _DIGEST.fullmatch(sha) is None):
                raise GiveUp
            continue
        # A stored copy: its manifest line is next, with the same digest (which fast_pairs
        # already found well-formed) and path.
        n = len(expected)
        if type(stored) is not str or size is None or n == len(pairs) or pairs[n] != (sha, stored):
            raise GiveUp
        expected.append(Expected(stored, pairs[n][0], size))
    if len(expected) != len(pairs):
        raise GiveUp
    out.items = len(_lines(chunk.items))
    out.last_id = last
    out.check = check_sized_batch(chunk.base, expected)
    return out


class _Manifest:
    """The manifest's lines, taken a number at a time as bytes (never parsed here)."""

    def __init__(self, blocks: Iterator[tuple[int, bytes | None]]) -> None:
        self.blocks = blocks
        self.buf = b""
        self.pos = 0

    def take(self, count: int) -> bytes:
        parts = []
        while count:
            if self.pos >= len(self.buf):
                nxt = next(self.blocks, None)
                if nxt is None or nxt[1] is None:
                    raise GiveUp  # fewer lines than items with a stored copy, or one too long
                self.buf, self.pos = nxt[1], 0
            buf, end = self.buf, self.pos
            while count and end < len(buf):
                newline = buf.find(b"\n", end)
                end = len(buf) if newline < 0 else newline + 1
                count -= 1
            parts.append(buf[self.pos : end])
            self.pos = end
        return b"".join(parts)

    def ended(self) -> bool:
        return self.pos >= len(self.buf) and next(self.blocks, None) is None


def _chunks(bundle: BundleModel, base: str, size: int) -> Iterator[Chunk]:
    """items.jsonl cut after every `size`-th item with a stored copy, each piece with as many
    manifest lines; GiveUp when a file has a line too long or the manifest has lines left over."""
    manifest = _Manifest(line_blocks(bundle.path / bagit.MANIFEST, LINE_CAP))
    held, held_marks = b"", 0  # item lines not sent yet, and how many stored copies they hold
    for _first, block in line_blocks(bundle.path / ITEMS, LINE_CAP):
        if block is None:
            raise GiveUp
        marks = [m.start() for m in _STORED_MARK.finditer(block)]
        start = 0
        at = size - held_marks - 1  # the mark that completes the next chunk
        while at < len(marks):
            newline = block.find(b"\n", marks[at])
            end = len(block) if newline < 0 else newline + 1
            yield Chunk(base, manifest.take(size), held + block[start:end])
            held, held_marks, start = b"", 0, end
            at = bisect.bisect_left(marks, end) + size - 1
        held += block[start:]
        held_marks += len(marks) - bisect.bisect_left(marks, start)
    if held or held_marks:
        yield Chunk(base, manifest.take(held_marks), held)
    if not manifest.ended():
        raise GiveUp
