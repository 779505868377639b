"""What grows with the payload, spilled to an on-disk index (stdlib sqlite3, in a temporary directory
outside the bundle): the listing of data/, manifest-sha256.txt and items.jsonl. Memory stays flat
whatever the number of files; the findings of parsing them are kept as they are found.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from manifest.findings import Finding, FindingKind
from manifest.format import bagit
from manifest.format.items import KINDS, STATUSES, parse_item
from manifest.verify.model import LINE_CAP, UNREADABLE_DIR, dangerous, walk_data

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from manifest.verify.model import BundleModel

_CHUNK = 4096  # rows per executemany
_DIGEST = re.compile(r"[0-9a-f]{64}")
_MANIFEST_LINE = re.compile(r"([0-9a-f]{64})  (.+)")
_MANIFEST_LINES = re.compile(r"^([0-9a-f]{64})  (.+)$", re.MULTILINE)
_BLOCK = 4 << 20


def _open_regular(path: Path) -> int:
    """An fd of a regular file, opened without following a link (OSError for anything else)."""
    from manifest.osio.readonly import open_noatime, regular_size

    fd = open_noatime(os.fsencode(path), getattr(os, "O_NOFOLLOW", 0))
    try:
        regular_size(fd, path)
    except OSError:
        os.close(fd)
        raise
    return fd


def bounded_lines(path: Path, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without the newline) of a regular file, never following a link; None for
    a line longer than `limit` (skipped, not held). Lines end at LF only, as sha256sum reads them."""
    fd = _open_regular(path)
    with os.fdopen(fd, "rb", buffering=1 << 20) as fh:
        number = 0
        while True:
            raw = fh.readline(limit + 1)
            if not raw:
                return
            number += 1
            if raw.endswith(b"\n"):
                yield number, raw[:-1]
                continue
            if len(raw) <= limit:  # the last line, without a newline
                yield number, raw
                return
            while raw and not raw.endswith(b"\n"):
                raw = fh.readline(1 << 20)
            yield number, None


def line_blocks(path: Path, limit: int, block: int = _BLOCK) -> Iterator[tuple[int, bytes | None]]:
    """(number of the first line, whole lines) of a regular file, a block of about `block` bytes
    at a time, never following a link; (number, None) for a line longer than `limit` that does not
    fit in a block (skipped, never held). The last block may end without a newline."""
    fd = _open_regular(path)
    with os.fdopen(fd, "rb", buffering=0) as fh:
        number, rest, skipping = 1, b"", False
        while chunk := fh.read(block):
            if skipping:
                newline = chunk.find(b"\n")
                if newline < 0:
                    continue
                chunk, skipping, number = chunk[newline + 1 :], False, number + 1
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            whole, rest = data[:cut], data[cut:]
            if whole:
                yield number, whole
                number += whole.count(b"\n")
            if len(rest) > max(limit, block):
                yield number, None
                rest, skipping = b"", True
        if rest and not skipping:
            yield number, rest


def fast_pairs(block: bytes, count: int) -> list[tuple[str, str]] | None:
    """(digest, path) of every line of `block` when each is a well-formed manifest line of a path
    under data/ that cannot point outside it; None when any line needs a closer look."""
    try:
        text = block.decode()
    except UnicodeDecodeError:
        return None
    if "\r" in text or "\\" in text or ".." in text:
        return None
    pairs = _MANIFEST_LINES.findall(text)
    if len(pairs) != count or not all(rel.startswith("data/") for _digest, rel in pairs):
        return None
    return pairs


@dataclass
class PayloadIndex:
    """data/, the manifest and the items, indexed on disk. Build with `open_index`, close with
    `close()` (removes the temporary directory)."""

    db: sqlite3.Connection
    tmp: str
    data_entries: int = 0  # non-directory entries under data/
    manifest_lines: int = 0
    manifest_valid: int = 0  # well-formed lines under data/
    manifest_unique: int = 0  # ... of which with a path not listed before
    items: int = 0
    manifest_read: bool = False
    items_read: bool = False
    manifest_findings: list[Finding] = field(default_factory=list)  # of parsing, in file order
    item_findings: list[Finding] = field(default_factory=list)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- data/
    def add_listing(self, bundle: Path) -> None:
        """Every non-directory entry under data/ with its kind from the directory entry alone (no
        stat per file; links and other non-directories are listed, never entered)."""
        rows: list[tuple[str, str]] = []
        for rel, kind in walk_data(bundle):
            if kind == UNREADABLE_DIR:
                continue  # a finding of list_data's, not an entry
            rows.append((rel, kind))
            if len(rows) >= _CHUNK:
                self._add_entries(rows)
        self._add_entries(rows)

    def _add_entries(self, rows: list[tuple[str, str]]) -> None:
        # A name that is not UTF-8 cannot be stored in sqlite text: surrogate-escaped, kept unique.
        self.db.executemany(
            "INSERT OR IGNORE INTO d VALUES (?, ?)",
            [(rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), k) for rel, k in rows],
        )
        self.data_entries += len(rows)
        rows.clear()

    # -- manifest-sha256.txt
    def add_manifest(self, file: Path) -> None:
        """Index the manifest a block of lines at a time: one regular expression over a block of
        well-formed lines (the usual case), line by line only where a block holds a bad one."""
        rows: list[tuple[int, str, str]] = []
        for first, block in line_blocks(file, LINE_CAP):
            if block is None:
                self.manifest_lines += 1
                self._manifest_line(first, None, rows)
                continue
            count = block.count(b"\n") + (not block.endswith(b"\n"))
            self.manifest_lines += count
            pairs = fast_pairs(block, count)
            if pairs is not None:
                rows.extend((first + i, rel, digest) for i, (digest, rel) in enumerate(pairs))
            else:
                for i, raw in enumerate(block.split(b"\n")[:count]):
                    self._manifest_line(first + i, raw, rows)
            if len(rows) >= _CHUNK:
                self._insert_manifest(rows)
        self._insert_manifest(rows)
        self.manifest_read = True

    def _manifest_line(self, number: int, raw: bytes | None, rows: list[tuple[int, str, str]]) -> None:
        where = f"{bagit.MANIFEST}:{number}"
        why = _manifest_line_problem(raw)
        if why:
            self.manifest_findings.append(Finding(FindingKind.MANIFEST_LINE_MALFORMED, where, why))
            return
        assert raw is not None
        match = _MANIFEST_LINE.fullmatch(raw.decode())
        assert match is not None
        digest, rel = match.group(1), match.group(2)
        if dangerous(rel) or not rel.startswith("data/"):
            self.manifest_findings.append(
                Finding(FindingKind.UNSAFE_PATH, where, f"path '{rel}' is not a file under data/")
            )
            return
        rows.append((number, rel, digest))

    def _insert_manifest(self, rows: list[tuple[int, str, str]]) -> None:
        cur = self.db.executemany("INSERT OR IGNORE INTO m VALUES (?, ?, ?)", rows)
        self.manifest_valid += len(rows)
        self.manifest_unique += cur.rowcount
        rows.clear()

    def manifest_duplicates(self, file: Path) -> Iterator[Finding]:
        """A path listed twice (only the first line counts). Rare: the manifest is read again."""
        if self.manifest_valid == self.manifest_unique:
            return
        for number, raw in bounded_lines(file, LINE_CAP):
            if raw is None or _manifest_line_problem(raw):
                continue
            match = _MANIFEST_LINE.fullmatch(raw.decode())
            assert match is not None
            rel = match.group(2)
            row = self.db.execute("SELECT line FROM m WHERE path = ?", (rel,)).fetchone()
            if row is not None and row[0] != number:
                yield Finding(
                    FindingKind.MANIFEST_DUPLICATE,
                    f"{bagit.MANIFEST}:{number}",
                    f"'{rel}' is listed twice (first on line {row[0]})",
                )

    # -- metadata/items.jsonl
    def add_items(self, file: Path) -> None:
        name = "metadata/items.jsonl"
        rows: list[tuple[int, str, str, str | None, int | None]] = []
        last_id = ""
        for number, raw in bounded_lines(file, LINE_CAP):
            where = f"{name}:{number}"
            if raw is None:
                self.item_findings.append(
                    Finding(FindingKind.ITEMS_UNREADABLE, where, f"line longer than {LINE_CAP} bytes")
                )
                continue
            try:
                item = parse_item(raw)
            except ValueError as exc:
                self.item_findings.append(
                    Finding(FindingKind.ITEMS_UNREADABLE, where, f"not a JSON item ({_short(exc)})")
                )
                continue
            if not isinstance(item, dict):
                self.item_findings.append(Finding(FindingKind.ITEMS_UNREADABLE, where, "not a JSON object"))
                continue
            item_id = item.get("id")
            if not isinstance(item_id, str) or not item_id or not is_unicode(item_id):
                self.item_findings.append(
                    Finding(FindingKind.ITEM_FIELD_INVALID, where, "id is not a non-empty string")
                )
                continue
            self.items += 1
            at = f"item {item_id} ({where})"
            if item_id <= last_id:
                self.item_findings.append(
                    Finding(FindingKind.ITEMS_ORDER, at, f"item {item_id} is out of order or repeated")
                )
            else:
                last_id = item_id
            bad = bad_fields(item)
            if bad:
                self.item_findings.append(
                    Finding(FindingKind.ITEM_FIELD_INVALID, at, f"wrong type or value: {', '.join(bad)}")
                )
                if "stored_as" in bad:
                    continue
            stored = item.get("stored_as")
            if stored:
                sha = item.get("sha256") if isinstance(item.get("sha256"), str) else None
                size = item.get("size")
                size = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
                rows.append((number, item_id, stored, sha, size))
                if len(rows) >= _CHUNK:
                    self._insert_items(rows)
        self._insert_items(rows)
        self.items_read = True

    def _insert_items(self, rows: list[tuple[int, str, str, str | None, int | None]]) -> None:
        self.db.executemany("INSERT INTO i VALUES (?, ?, ?, ?, ?)", rows)
        rows.clear()

    # -- queries for the rules
    def query(self, sql: str, *args: Any) -> Iterator[tuple[Any, ...]]:
        cur = self.db.execute(sql, args)
        while rows := cur.fetchmany(_CHUNK):
            yield from rows


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def _manifest_line_problem(raw: bytes | None) -> str | None:
    if raw is None:
        return f"line longer than {LINE_CAP} bytes"
    if b"\r" in raw:
        return "carriage return in the line (CRLF line ends?): not '<sha256>  <path>'"
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return "not UTF-8"
    if _MANIFEST_LINE.fullmatch(text) is None:
        return "not '<sha256>  <path>'"
    return None


def is_unicode(text: str) -> bool:
    """False for a string holding a lone surrogate (JSON allows `\\ud800`; no file name is one)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def bad_fields(item: dict[str, Any]) -> list[str]:
    """The fields of an item whose JSON type or value cannot be right (SPEC §3)."""
    bad = []
    stored = item.get("stored_as")
    if stored is not None and (not isinstance(stored, str) or not stored or not is_unicode(stored)):
        bad.append("stored_as")
    sha = item.get("sha256")
    if sha is not None and not (isinstance(sha, str) and _DIGEST.fullmatch(sha)):
        bad.append("sha256")
    size = item.get("size")
    if size is not None and not (_is_int(size) and size >= 0):
        bad.append("size")
    if item.get("kind") is not None and item.get("kind") not in KINDS:
        bad.append("kind")
    if item.get("status") is not None and item.get("status") not in STATUSES:
        bad.append("status")
    return bad


def _connect(file: str) -> sqlite3.Connection:
    db = sqlite3.connect(file, isolation_level=None)
    for pragma in (
        "journal_mode = OFF",
        "synchronous = OFF",
        "temp_store = FILE",
        "cache_size = -16384",  # 16 MiB, whatever the number of files
        "locking_mode = EXCLUSIVE",
    ):
        db.execute(f"PRAGMA {pragma}")
    return db


ITEMS_DB = "items.db"
ITEMS = "metadata/items.jsonl"


def index_items(tmp: str, file: Path | None) -> None:
    """Index items.jsonl into its own database in `tmp` (run in a worker process, beside the main
    process indexing the manifest): table i, the parsing findings (f) and the counts (meta)."""
    db = _connect(os.path.join(tmp, ITEMS_DB))  # noqa: PTH118
    db.execute("BEGIN")
    db.execute(
        "CREATE TABLE i (line INTEGER PRIMARY KEY, id TEXT, stored_as TEXT, sha256 TEXT, size INTEGER)"
    )
    db.execute("CREATE INDEX i_stored ON i (stored_as, line)")
    db.execute("CREATE TABLE f (n INTEGER PRIMARY KEY, kind TEXT, place TEXT, message TEXT, expected, found)")
    db.execute("CREATE TABLE meta (items INTEGER, items_read INTEGER)")
    part = PayloadIndex(db, tmp)
    try:
        if file is not None:  # else: empty tables, items_read false
            part.add_items(file)
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        part.item_findings.append(Finding(FindingKind.TAG_FILE_MISSING, ITEMS, f"cannot be read: {why}"))
    db.executemany(
        "INSERT INTO f (kind, place, message, expected, found) VALUES (?, ?, ?, ?, ?)",
        [(str(f.kind), f.where, f.message, f.expected, f.found) for f in part.item_findings],
    )
    db.execute("INSERT INTO meta VALUES (?, ?)", (part.items, part.items_read))
    db.execute("COMMIT")
    db.close()


def attach_items(index: PayloadIndex) -> None:
    """Join what `index_items` wrote to `index` (after the main database's transaction)."""
    index.db.execute("ATTACH DATABASE ? AS it", (os.path.join(index.tmp, ITEMS_DB),))  # noqa: PTH118
    for kind, place, message, expected, found in index.query(
        "SELECT kind, place, message, expected, found FROM f ORDER BY n"
    ):
        index.item_findings.append(Finding(FindingKind(kind), place, message, expected, found))
    row = index.db.execute("SELECT items, items_read FROM meta").fetchone()
    index.items, index.items_read = int(row[0]), bool(row[1])


def build_index(bundle: BundleModel) -> PayloadIndex:
    """The exact index of data/, the manifest and items.jsonl: items.jsonl is indexed by a worker
    process while this one lists data/ and indexes the manifest."""
    from manifest.errors import WorkerLost
    from manifest.osio.parallel import start_process

    path = bundle.path
    index = open_index()
    apart: Any = None
    try:
        items = path / ITEMS if bundle.within_cap(ITEMS) else None
        if (bundle.workers or os.cpu_count() or 1) > 1 and items is not None:
            apart = start_process(index_items, index.tmp, items)
        else:
            index_items(index.tmp, items)
        data = bundle.entries.get("data")
        if data is not None and data.kind == "directory":
            index.add_listing(path)
        if bundle.within_cap(bagit.MANIFEST):
            try:
                index.add_manifest(path / bagit.MANIFEST)
            except OSError as exc:
                why = (exc.strerror or str(exc)).lower()
                index.manifest_findings.append(
                    Finding(FindingKind.TAG_FILE_MISSING, bagit.MANIFEST, f"cannot be read: {why}")
                )
        index.db.execute("COMMIT")
        if apart is not None:
            apart.join()
            if apart.exitcode != 0:
                raise WorkerLost(
                    f"the worker indexing {ITEMS} ended with status {apart.exitcode} (out of memory?)",
                    "run the command again",
                )
            apart = None
        attach_items(index)
    except BaseException:
        if apart is not None and apart.is_alive():
            apart.terminate()
            apart.join()
        index.close()
        raise
    return index


def open_index() -> PayloadIndex:
    """An empty index in a new temporary directory (never inside the bundle)."""
    tmp = tempfile.mkdtemp(prefix="sealbox-verify-")
    try:
        db = _connect(os.path.join(tmp, "index.db"))  # noqa: PTH118
        db.execute("BEGIN")
        db.execute("CREATE TABLE d (path TEXT PRIMARY KEY, kind TEXT) WITHOUT ROWID")
        db.execute("CREATE TABLE m (line INTEGER PRIMARY KEY, path TEXT UNIQUE, digest TEXT)")
    except (OSError, sqlite3.Error):
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PayloadIndex(db, tmp)
