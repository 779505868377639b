"""The bundle as verify reads it, parsed once (SPEC §6): what is small is held in memory, what grows
with the payload (the manifest, items.jsonl, the listing of data/) is spilled into an on-disk
index (`PayloadIndex`). No entry of the bundle is ever followed if it is a link, and no file is
read before its size was checked against a cap.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from manifest.findings import Finding, FindingKind
from manifest.format import bagit
from manifest.format.bagit import INCOMPLETE
from manifest.osio.readfd import read_at_most

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

    from manifest.signing.keys import KeyStore
    from manifest.verify.index import PayloadIndex
    from manifest.verify.stream import StreamRun

SPECIALS_HELD = 10_000  # links and other non-files in data/ listed by name; beyond: exact path only


@dataclass
class Listing:
    """data/ as its directory entries show it, without a stat per file: how many regular files,
    and the few entries that are neither file nor directory (links, fifos...), by name."""

    files: int = 0
    specials: list[tuple[str, str]] = field(default_factory=list)
    more_specials: bool = False  # over SPECIALS_HELD

    @property
    def entries(self) -> int:
        return self.files + len(self.specials)


UNREADABLE_DIR = "unreadable directory"


def walk_data(bundle: Path) -> Iterator[tuple[str, str]]:
    """(bag-relative path, kind) of every non-directory entry under data/, kind "file", "symlink"
    or "special" from the directory entry alone (no stat per file; links and other non-directories
    are never entered), and (directory, UNREADABLE_DIR) for a directory that cannot be listed."""
    stack = ["data"]
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(bundle / rel_dir) as it:
                listing = list(it)
        except OSError:
            yield rel_dir, UNREADABLE_DIR
            continue
        for entry in listing:
            rel = f"{rel_dir}/{entry.name}"
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                    continue
                kind = (
                    "file"
                    if entry.is_file(follow_symlinks=False)
                    else "symlink"
                    if entry.is_symlink()
                    else "special"
                )
            except OSError:
                kind = "special"
            yield rel, kind


def list_data(bundle: Path) -> Listing:
    """Count data/ (links and other non-directories are listed, never entered)."""
    out = Listing()
    for rel, kind in walk_data(bundle):
        if kind == "file":
            out.files += 1
        elif kind == UNREADABLE_DIR or len(out.specials) < SPECIALS_HELD:  # unreadable: never capped
            out.specials.append((rel, kind))
        else:
            out.more_specials = True
    return out


def dangerous(rel: str) -> bool:
    """A manifest path that could point outside the bag (absolute, `..`, backslash, `~`)."""
    return (
        rel.startswith(("/", "~"))
        or "\\" in rel
        or (".." in rel and (rel == ".." or rel.startswith("../") or "/../" in rel or rel.endswith("/..")))
    )


@dataclass
class PayloadSource:
    """What grows with the payload: the listing of data/ (counted at parse time), and the exact
    on-disk index of data/, the manifest and items.jsonl, built only when a rule needs it (the
    streamed check of a bundle whose manifest and items agree line by line needs none)."""

    listing: Listing
    fast_items: int | None = None  # items counted by the streamed check, when it sufficed
    _index: PayloadIndex | None = None

    @property
    def data_entries(self) -> int:
        return self.listing.entries

    def index(self, bundle: BundleModel) -> PayloadIndex:
        if self._index is None:
            from manifest.verify.index import build_index

            self._index = build_index(bundle)
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None


PEM = "keys/signer.pub.pem"
MINISIGN_PUB = "keys/signer.minisign.pub"
ITEMS = "metadata/items.jsonl"

# Caps on what verify reads. A tag file over its cap is a finding, never read.
SMALL_CAP = 1 << 20  # declarations, keys, signatures, timestamp: a few hundred bytes each
CUSTODY_CAP = 64 << 20  # about 60,000 custody events of 1 KiB
GROWING_BASE = 256 << 20  # manifests and metadata/: this much, plus GROWING_PER_FILE per payload file
GROWING_PER_FILE = 64 << 10
LINE_CAP = 64 << 10  # the longest manifest or items.jsonl line verify reads (longer: a finding)
SMALL_FILES = frozenset({"bagit.txt", "bag-info.txt", PEM, MINISIGN_PUB, bagit.SIG, bagit.MINISIG, bagit.TSR})
# Read at parse time into memory (each under SMALL_CAP).
READ_AT_PARSE = ("bagit.txt", "bag-info.txt", PEM, MINISIGN_PUB, bagit.SIG, bagit.MINISIG)


@dataclass(frozen=True)
class Entry:
    """One directory entry of the bundle as lstat saw it (never followed)."""

    rel: str
    kind: str  # file, directory, symlink, fifo, socket, character device, block device, other
    size: int


def entry_kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "other"


@dataclass(frozen=True)
class BundleModel:
    """Everything the rules read. `entries` is every entry outside data/ (lstat, never followed);
    `small` holds the bytes of the small tag files that were regular and under their cap;
    `payload` indexes data/, manifest-sha256.txt and items.jsonl on disk."""

    path: Path
    entries: Mapping[str, Entry]
    small: Mapping[str, bytes]
    info: Mapping[str, str]
    payload: PayloadSource
    trusted: frozenset[str]
    parse_findings: tuple[Finding, ...] = field(default=())
    workers: int | None = None
    tsa_ca: Path | None = None
    previous: Path | None = None
    store: KeyStore | None = None
    receipts: tuple[Path, ...] = ()
    stream: StreamRun | None = None  # the streamed payload check, when started ahead

    @property
    def incomplete(self) -> bool:
        return self.path.name.endswith(INCOMPLETE)

    def cap(self, rel: str) -> tuple[int, str]:
        """The most bytes verify reads of tag file `rel`, and how that cap is made (for findings)."""
        from manifest.signing.custody import CONTINUATION, CUSTODY

        if rel in SMALL_FILES:
            return SMALL_CAP, "1 MiB"
        if rel in (CUSTODY, CONTINUATION):
            return CUSTODY_CAP, "64 MiB"
        files = self.payload.data_entries
        return GROWING_BASE + GROWING_PER_FILE * files, f"256 MiB + 64 KiB x {files} payload files"

    def regular(self, rel: str) -> Entry | None:
        """The entry if `rel` is a regular file (its parents are then real directories)."""
        entry = self.entries.get(rel)
        return entry if entry is not None and entry.kind == "file" else None

    def within_cap(self, rel: str) -> bool:
        entry = self.regular(rel)
        return entry is not None and entry.size <= self.cap(rel)[0]

    def too_large(self, rel: str) -> Finding | None:
        entry = self.regular(rel)
        if entry is None:
            return None
        cap, how = self.cap(rel)
        if entry.size <= cap:
            return None
        return Finding(
            FindingKind.TAG_FILE_TOO_LARGE,
            rel,
            f"{entry.size} bytes, over verify's cap of {cap} bytes ({how}) for this file: not read",
            str(cap),
            str(entry.size),
        )


def walk_tags(bundle: Path) -> dict[str, Entry]:
    """Every entry outside data/ (data/ itself included), by lstat; links and other non-directories
    are recorded, never entered. Unreadable directories are recorded as such (kind 'unreadable')."""
    entries: dict[str, Entry] = {}
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(bundle / rel_dir if rel_dir else bundle) as it:
                listing = list(it)
        except OSError:
            entries[rel_dir] = Entry(rel_dir, "unreadable", 0)
            continue
        for item in listing:
            rel = f"{rel_dir}/{item.name}" if rel_dir else item.name
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished meanwhile
            kind = entry_kind(st.st_mode)
            entries[rel] = Entry(rel, kind, st.st_size if kind == "file" else 0)
            if kind == "directory" and rel != "data":
                stack.append(rel)
    return entries


def read_regular(bundle: Path, entry: Entry, cap: int) -> bytes:
    """The bytes of a tag file that `walk_tags` saw as regular, opened without following a link
    and read no further than `cap` (OSError if it is no longer a regular file)."""
    from manifest.osio.readonly import open_noatime, regular_size

    fd = open_noatime(os.fsencode(bundle / entry.rel), getattr(os, "O_NOFOLLOW", 0))
    try:
        return read_at_most(fd, min(regular_size(fd, entry.rel), cap))
    finally:
        os.close(fd)
