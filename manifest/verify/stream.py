"""The payload check streamed, for the usual bundle: no index at all.

sealbox writes manifest-sha256.txt in the order of items.jsonl, so in a bundle as sealed the n-th
manifest line and the n-th item with a stored copy name the same file with the same digest. The
main process only cuts both files into matching chunks (byte ranges, never parsed there); each
worker reads its ranges, parses the manifest lines and items, proves they agree, and hashes the
files (checking the recorded size before it reads). It proves data/ holds exactly the listed files
by counting: no link or other non-file is in data/ (so no path can lead out of it), every listed
file opened as a distinct regular file (distinct inode numbers, on one device), and as many were
opened as data/ holds. Whenever any of that does not hold — a malformed or out-of-step line, a
missing or unreadable file, a count that differs — it gives up and the exact, indexed check runs
instead; what it reports is only what it proved: payload-changed, payload-size-mismatch and
payload-oxum.

It can start before the rest of verify has read the bundle (`start_stream`): the workers hash
while the main process lists the bundle and checks tag files, signatures and custody; the
payload rule then takes the result, or throws it away when the bundle is not in the shape the
streamed check may answer for (the same conditions as when it runs there and then).
"""

from __future__ import annotations

import heapq
import os
import re
import stat
import threading
from array import array
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, NamedTuple

import orjson

from manifest.findings import Finding, FindingKind
from manifest.format import bagit
from manifest.format.items import KINDS, STATUSES
from manifest.hashing import Problem, Wanted, check_sized_batch
from manifest.osio.parallel import Workers, few_collections, give_back_freed_memory, ordered_map
from manifest.osio.readonly import open_noatime
from manifest.verify.model import GROWING_BASE, ITEMS, LINE_CAP

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from manifest.verify.model import BundleModel

K = FindingKind
_BATCH = 512  # payload files a chunk at most
_BLOCK = 4 << 20  # bytes the main process reads at a time to cut the files
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# A manifest smaller than this (a few hundred files) is checked when the payload rule gets to it:
# starting workers ahead would cost more than it overlaps.
EARLY_FROM = 32 << 10
_LINE_GUESS = 110  # bytes of a manifest line, to size chunks before the lines are counted
_MERGE_IN_MEMORY = 1 << 16  # inode numbers compared in a set at once; more: merged lazily


class GiveUp(Exception):
    """The bundle is not in the shape the streamed check can prove: use the exact check."""


@dataclass
class Streamed:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0  # payload files read
    nbytes: int = 0
    items: int = 0
    opened: int = 0  # regular files opened, read or not


class Source(NamedTuple):
    """A file the chunks are cut from, as the main process opened it: a worker reads its range
    only from that same file (device and inode), never through a link."""

    path: str
    dev: int
    ino: int

    def read(self, start: int, end: int) -> bytes:
        fd = open_noatime(self.path, _NOFOLLOW)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (self.dev, self.ino):
                raise GiveUp  # replaced meanwhile
            data = os.pread(fd, end - start, start)
        finally:
            os.close(fd)
        if len(data) != end - start:
            raise GiveUp  # shortened meanwhile
        return data


class Chunk(NamedTuple):
    """One worker's share: whole manifest lines and the whole items.jsonl lines that should hold
    exactly their items with a stored copy, as byte ranges (the main process only cuts the files,
    it parses nothing: the worker proves the two agree)."""

    base: str  # the bundle's path with a trailing slash
    manifest: Source
    manifest_start: int
    manifest_end: int
    items: Source
    items_start: int
    items_end: int

    def read(self) -> tuple[bytes, bytes]:
        """The chunk's manifest lines and items lines."""
        return (
            self.manifest.read(self.manifest_start, self.manifest_end),
            self.items.read(self.items_start, self.items_end),
        )


class ChunkCheck(NamedTuple):
    """What a worker found in one chunk (small: it crosses a pipe)."""

    items: int
    first_id: str
    last_id: str
    files: int  # read whole
    nbytes: int
    problems: list[Problem]  # `changed` or `size` only: anything else gave up
    inodes: bytes  # of the files opened, sorted and distinct (array "Q")
    devices: tuple[int, ...]


# How sealbox writes an item with a stored copy (compact JSON). Only used to cut the files into
# chunks; the worker parses every line, so a line written otherwise makes a chunk that does not
# agree with its manifest lines (GiveUp), never a wrong answer.
_STORED_MARK = b'"stored_as":"'
_KIND_OR_NONE = frozenset((*KINDS, None))
_STATUS_OR_NONE = frozenset((*STATUSES, None))
_DIGEST = re.compile(r"[0-9a-f]{64}")
_PAIR = re.compile(r"^([0-9a-f]{64})  (data/[^\n]+)$", re.MULTILINE)


def _lines(block: bytes) -> list[bytes]:
    lines = block.split(b"\n")
    if block.endswith(b"\n"):
        lines.pop()
    return lines


def _line_count(text: str) -> int:
    return text.count("\n") + (not text.endswith("\n")) if text else 0


def _pairs(block: bytes) -> list[tuple[str, str]]:
    """(digest, path) of every manifest line of the block, each well formed and naming a path
    under data/ that cannot lead out of it (no `..`, no empty or `.` component); GiveUp if any
    line needs a closer look."""
    if not block:
        return []
    try:
        text = block.decode()
    except UnicodeDecodeError:
        raise GiveUp from None
    if (
        "\r" in text
        or "\\" in text
        or "\x00" in text
        or ".." in text
        or "//" in text
        or "/./" in text
        or "/.\n" in text
        or text.endswith("/.")
    ):
        raise GiveUp  # digests are hex: any of these is in a path
    pairs: list[tuple[str, str]] = _PAIR.findall(text)
    if len(pairs) != _line_count(text) or max(map(len, _lines(block))) > LINE_CAP:
        raise GiveUp
    return pairs


class _Parsed(NamedTuple):
    expected: list[Wanted]
    items: int
    first_id: str
    last_id: str


def _items(block: bytes, pairs: list[tuple[str, str]]) -> _Parsed:
    """The items of a chunk read one by one with orjson: GiveUp at the first line, field or
    pairing the exact check would report (or might: anything unusual)."""
    expected: list[Wanted] = []
    first = last = ""
    loads = orjson.loads
    lines = _lines(block)
    if lines and max(map(len, lines)) > LINE_CAP:
        raise GiveUp
    count = len(pairs)
    try:
        for raw in lines:
            # orjson never gives a string with a lone surrogate: names and ids are valid text.
            # Not JSON, not an object, no id: an error here (GiveUp below); an id that is no
            # text compares with none (TypeError).
            item = loads(raw)
            item_id = item["id"]
            if not last < item_id:
                raise GiveUp  # out of order, repeated or empty
            if not last:
                first = item_id
            last = item_id
            get = item.get
            if get("kind") not in _KIND_OR_NONE or get("status") not in _STATUS_OR_NONE:
                raise GiveUp  # (an unhashable value is a TypeError)
            stored, sha, size = get("stored_as"), get("sha256"), get("size")
            if size is not None and (type(size) is not int or size < 0):
                raise GiveUp
            if stored is None:
                if sha is not None and (type(sha) is not str or _DIGEST.fullmatch(sha) is None):
                    raise GiveUp
                continue
            # A stored copy: its manifest line is next, with the same digest (which _pairs
            # already found well-formed) and path.
            n = len(expected)
            if type(stored) is not str or size is None or n == count or pairs[n] != (sha, stored):
                raise GiveUp
            expected.append((stored, sha, size, None))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise GiveUp from None  # the exact check says what is wrong with the line
    if len(expected) != count:
        raise GiveUp
    return _Parsed(expected, len(lines), first, last)


def parse_chunk(manifest: bytes, items: bytes) -> _Parsed:
    """A chunk's manifest lines and items, proven to agree (GiveUp where they do not, or where
    the exact check would report anything)."""
    return _items(items, _pairs(manifest))


def _check_chunk(chunk: Chunk) -> ChunkCheck:
    """Worker side: read and parse the chunk's manifest lines and items, check them as the exact
    check would (GiveUp at the first it would report), then hash the files."""
    parsed = parse_chunk(*chunk.read())
    check = check_sized_batch(chunk.base, parsed.expected)
    if check.missing or any(p.kind == "unreadable" for p in check.problems):
        raise GiveUp  # the exact check names the file
    inodes = check.inodes  # sorted
    if len(set(inodes)) != len(inodes):
        raise GiveUp  # one file listed twice, or a hard link: data/ is not what it seems
    return ChunkCheck(
        parsed.items,
        parsed.first_id,
        parsed.last_id,
        check.files,
        check.nbytes,
        check.problems,
        array("Q", inodes).tobytes(),
        tuple(check.devices),
    )


@dataclass
class _Tally:
    """The chunks' results added up, before data/'s listing and Payload-Oxum are compared."""

    items: int = 0
    files: int = 0
    nbytes: int = 0
    opened: int = 0
    problems: list[Problem] = field(default_factory=list)


def _distinct(runs: list[tuple[int, int, bytes]]) -> bool:
    """No inode number twice across the runs (lowest, highest, sorted distinct numbers as array
    "Q" bytes). Runs whose ranges do not overlap need no comparing; overlapping ones are compared
    in a set when small, else merged lazily (memory stays 8 bytes a file)."""
    runs.sort()
    group: list[tuple[int, int, bytes]] = []
    high = -1
    for run in runs:
        if run[0] > high:
            if not _group_distinct(group):
                return False
            group = []
        group.append(run)
        high = max(high, run[1])
    return _group_distinct(group)


def _group_distinct(group: list[tuple[int, int, bytes]]) -> bool:
    if len(group) < 2:
        return True
    arrays = [array("Q", run[2]) for run in group]
    total = sum(map(len, arrays))
    if total <= _MERGE_IN_MEMORY:
        return len(set(chain.from_iterable(arrays))) == total
    last = -1
    for ino in heapq.merge(*arrays):
        if ino == last:
            return False
        last = ino
    return True


def _chunk_size(files: int, workers: int) -> int:
    """Many chunks for every worker, so that a few big files still spread over all of them."""
    return min(_BATCH, max(1, -(-files // (workers * 16))))


def _stream(
    path: Path, workers: int, size: int, pool: Workers | None = None, stop: threading.Event | None = None
) -> _Tally | None:
    """Run the chunks through the workers and add up what they found; None when the streamed check
    cannot answer (or `stop` was set)."""
    tally = _Tally()
    runs: list[tuple[int, int, bytes]] = []
    devices: set[int] = set()
    last_id = ""
    base = str(path) + "/"
    try:
        chunks = _chunks(path, base, size)
        with few_collections():
            for nth, chunk in enumerate(ordered_map(_check_chunk, chunks, workers, pool=pool)):
                if stop is not None and stop.is_set():
                    return None
                if chunk.items and chunk.first_id <= last_id:
                    return None  # out of order across chunks: the exact check says where
                last_id = chunk.last_id or last_id
                tally.items += chunk.items
                tally.files += chunk.files
                tally.nbytes += chunk.nbytes
                tally.problems += chunk.problems
                devices.update(chunk.devices)
                if chunk.inodes:
                    inodes = array("Q", chunk.inodes)
                    tally.opened += len(inodes)
                    runs.append((inodes[0], inodes[-1], chunk.inodes))
                if nth % 64 == 63:
                    give_back_freed_memory()
    except GiveUp:
        return None
    except OSError:
        return None  # the exact check says which file could not be read
    finally:
        if pool is not None:
            pool.stop()  # ended already, unless the map never started
    if len(devices) > 1 or not _distinct(runs):
        return None
    return tally


class StreamRun:
    """The streamed check started ahead: workers forked now (from this thread, before any other
    runs), fed by a thread of this process while the main thread goes on with the other rules.
    `result` waits for it; `cancel` stops it at once (idempotent)."""

    def __init__(self, path: Path, workers: int, size: int) -> None:
        self._stop = threading.Event()
        self._pool = Workers(_check_chunk, workers)
        self._tally: _Tally | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(path, size), name="sealbox-verify-payload", daemon=True
        )
        try:
            self._thread.start()
        except BaseException:
            self._pool.stop()
            raise

    def _run(self, path: Path, size: int) -> None:
        try:
            self._tally = _stream(path, self._pool.count, size, self._pool, self._stop)
        except BaseException as exc:  # handed to the main thread by `result`
            self._error = exc

    def result(self) -> _Tally | None:
        self._thread.join()
        if self._error is not None and not self._stop.is_set():
            raise self._error
        return None if self._stop.is_set() else self._tally

    def cancel(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._pool.terminate()
            self._thread.join()


def start_stream(path: Path, workers: int | None = None) -> StreamRun | None:
    """Start the streamed check of the bundle at `path` ahead of the rest of verify, when it is
    big enough to gain from it and its manifest and items.jsonl are regular files under the
    smallest cap verify reads them to (so a bundle the model will refuse costs no more than that);
    None otherwise (the payload rule then runs it itself)."""
    count = max(1, workers or os.cpu_count() or 1)
    if count < 2:
        return None
    try:
        manifest = os.lstat(path / bagit.MANIFEST)
        items = os.lstat(path / ITEMS)
    except (OSError, ValueError):
        return None
    if not (stat.S_ISREG(manifest.st_mode) and stat.S_ISREG(items.st_mode)):
        return None
    if manifest.st_size < EARLY_FROM or max(manifest.st_size, items.st_size) > GROWING_BASE:
        return None
    try:
        return StreamRun(path, count, _chunk_size(manifest.st_size // _LINE_GUESS, count))
    except (OSError, RuntimeError):
        return None  # no process or thread to be had now: the payload rule tries again in turn


def stream_check(bundle: BundleModel) -> Streamed | None:
    """The payload and item checks of a bundle whose manifest and items.jsonl are in step; None
    when the exact, indexed check must run instead (nothing is reported then). Takes the result
    of the run started ahead (`bundle.stream`) when there is one."""
    run = bundle.stream
    listing = bundle.payload.listing
    from manifest.verify.rules import parse_oxum

    oxum = parse_oxum(bundle.info.get("Payload-Oxum", ""))
    if (
        listing.specials
        or listing.more_specials
        or not (bundle.within_cap(bagit.MANIFEST) and bundle.within_cap(ITEMS))
        or oxum is None
    ):
        if run is not None:
            run.cancel()
        return None
    if run is not None:
        tally = run.result()
    else:
        workers = max(1, bundle.workers or os.cpu_count() or 1)
        size = _chunk_size(listing.files, workers)
        if listing.files <= size:
            workers = 1  # one chunk: starting workers would cost more than it saves
        tally = _stream(bundle.path, workers, size)
    if tally is None or tally.opened != listing.files:
        return None
    counts = Streamed(files=tally.files, nbytes=tally.nbytes, items=tally.items, opened=tally.opened)
    disk_bytes = tally.nbytes
    for problem in tally.problems:
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


def _source(path: str) -> tuple[int, Source]:
    """A tag file opened for cutting (never through a link; GiveUp if it is not a regular file)."""
    fd = open_noatime(path, _NOFOLLOW)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise GiveUp
    return fd, Source(path, st.st_dev, st.st_ino)


class _Cursor:
    """A file the main process cuts at line ends, never parsing it, read a block at a time into
    one buffer (no new memory for each block): `offset` is where the part not cut yet starts."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray(2 * _BLOCK)
        self.n = 0  # bytes of buf read
        self.pos = 0  # where the part not cut yet starts in buf
        self.base = 0  # the offset of buf in the file
        self.cut = 0  # lines cut so far (by `lines`)
        self.eof = False

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def _fill(self) -> bool:
        """Read the next block after what is not cut yet (moved to the front); False at the end."""
        if self.eof:
            return False
        rest = self.n - self.pos
        if self.pos:
            self.buf[:rest] = self.buf[self.pos : self.n]
            self.base += self.pos
            self.pos, self.n = 0, rest
        if len(self.buf) - self.n < _BLOCK:
            self.buf.extend(bytes(_BLOCK))  # a piece bigger than a block: rare
        got = os.readv(self.fd, [memoryview(self.buf)[self.n :]])
        self.n += got
        self.eof = not got
        return bool(got)

    def ended(self) -> bool:
        return self.pos >= self.n and not self._fill()

    def piece(self, span: int) -> tuple[int, int]:
        """Cut the lines up to the end of the one `span` bytes on (or to the end of the file):
        their start and end offsets. GiveUp at a line longer than verify reads."""
        first = self.offset  # (a refill moves the buffer, not the offset)
        while True:
            start = self.pos
            if start + span < self.n:
                newline = self.buf.find(b"\n", start + span - 1, self.n)
                if newline >= 0:
                    self.pos = newline + 1
                    break
                if self.n - start - span > LINE_CAP:
                    raise GiveUp
            if not self._fill():
                self.pos = self.n
                break
        return first, self.base + self.pos

    def lines(self, count: int) -> None:
        """Cut `count` whole lines (the last line of the file may lack its newline), found by
        counting in C from a guess made of the lines cut so far; GiveUp when the file has fewer
        or a line is longer than verify reads."""
        while count:
            if self.pos >= self.n and not self._fill():
                raise GiveUp  # fewer lines than items with a stored copy
            buf, pos, n = self.buf, self.pos, self.n
            end = min(n, pos + count * max(1, self.offset // max(1, self.cut)))
            seen = buf.count(b"\n", pos, end)
            while seen < count and (newline := buf.find(b"\n", end, n)) >= 0:
                end = newline + 1
                seen += 1
            if seen < count:  # not enough in the buffer: its whole lines, then the next block
                self.pos = buf.rfind(b"\n", pos, n) + 1 or pos
                if self.n - self.pos > LINE_CAP:
                    raise GiveUp
                if not self._fill() and self.pos < self.n:
                    self.pos = self.n  # the last line of the file, without its newline
                    seen += 1
            else:
                while seen > count:
                    end = buf.rfind(b"\n", pos, end)
                    seen -= 1
                self.pos = buf.rfind(b"\n", pos, end) + 1  # just past the count-th
            self.cut += seen
            count -= seen


def _chunks(path: Path, base: str, size: int) -> Iterator[Chunk]:
    """items.jsonl cut at line ends into pieces of about `size` items with a stored copy (by
    bytes: the first block tells how many bytes an item takes), each with as many manifest lines
    as it has stored copies; GiveUp when the manifest has lines left over or too few."""
    m_fd, m_source = _source(str(path / bagit.MANIFEST))
    try:
        i_fd, i_source = _source(str(path / ITEMS))
    except BaseException:
        os.close(m_fd)
        raise
    try:
        manifest, items = _Cursor(m_fd), _Cursor(i_fd)
        span = 0
        while not items.ended():
            if not span:  # from the first block
                head = items.buf[: items.n]
                span = max(1, size * len(head) // max(1, head.count(_STORED_MARK)))
            start, end = items.piece(span)
            at = start - items.base  # the piece in the buffer
            stored = items.buf.count(_STORED_MARK, at, at + end - start)
            m_start = manifest.offset
            manifest.lines(stored)
            yield Chunk(base, m_source, m_start, manifest.offset, i_source, start, end)
        if not manifest.ended():
            raise GiveUp
    finally:
        os.close(m_fd)
        os.close(i_fd)
