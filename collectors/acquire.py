"""One-pass acquisition: walk sources, then read each file once to hash and copy it, in parallel.

The main process walks (cheap, ordered, assigns item ids) and writes items.jsonl in id order;
a pool of worker processes does the per-file work, because per-file Python work holds the GIL.
Memory stays flat: a bounded window of batches is in flight and results stream to disk.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fnmatch
import grp
import json
import os
import pwd
import re
import stat
import time
import unicodedata
from dataclasses import dataclass, field
from hashlib import sha256
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from collectors.fsmeta import Meta, StatReader
from manifest.bundle import ignores_case
from manifest.errors import BundleError
from manifest.format.bagit import manifest_line
from manifest.format.items import empty_item, item_line
from manifest.format.pathenc import long_stored_path, stored_path
from manifest.format.timefmt import rfc3339_ns
from manifest.hashing import hash_zeros, hole_at, is_sparse
from manifest.osio.flags import FS_IMMUTABLE_FL, FlagSetter
from manifest.osio.mountns import pseudo_devices
from manifest.osio.parallel import few_collections, ordered_map
from manifest.osio.readonly import open_noatime
from manifest.osio.spool import Spool, Spooled
from manifest.views import ViewContext, ViewSet

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from manifest.bundle import BundleWriter
    from manifest.previous import PreviousBundle

BATCH_FILES = 512
BATCH_BYTES = 32 << 20  # a worker hands back the rest of a batch once it has copied this much
ALREADY_COLLECTED = "already collected in this bundle through another source"
CASE_APART = (
    "stored under data/long: a name differing from another only in case would collide where case "
    "is ignored (exFAT, FAT, Windows, macOS)"
)
BIG_FILE = 8 << 20  # a file this big is copied in a batch of its own, so big files spread
BUFFER = 1 << 20
_ZEROS = bytes(BUFFER)
_O_NOATIME = getattr(os, "O_NOATIME", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_PATH = getattr(os, "O_PATH", os.O_RDONLY)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW


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

    def excluder(self) -> Callable[[str, str], bool]:
        if not self.excludes:
            return lambda _full, _name: False
        rx = re.compile("|".join(fnmatch.translate(g) for g in self.excludes))
        return lambda full, name: bool(rx.match(full) or rx.match(name))


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


DirId = tuple[int, int]  # a directory's identity: device, inode
# What the walk finds: path, original, source index, size (when asked for, else 0), the identity
# of the directory it was listed from (None for a source itself), and whether its copy is stored
# apart (see `walk`). A task is the item id, path, original, source index, that identity and that
# flag. Plain tuples: cheap to pickle.
Found = tuple[bytes, bytes, int, int, DirId | None, bool]
Task = tuple[int, bytes, bytes, int, DirId | None, bool]


def _text(path: bytes) -> str:
    """Readable text of a path; undecodable bytes become U+FFFD (the exact bytes go in *_b64)."""
    return path.decode("utf-8", "replace")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def walk(
    sources: list[Source],
    on_error: Callable[[bytes, str], None] | None = None,
    skip: Skip | None = None,
    sizes: bool = False,
) -> Iterator[Found]:
    """Yield (path, original, source index, size, listed from, apart) depth-first in sorted
    order, never following symlinks and listing directories with O_NOATIME so not even their atime
    moves. `skip` leaves out sealbox's own output, wherever it appears, and what is inside a
    pseudo filesystem (the mount point is yielded, nothing below it). `apart` is set for a name
    that differs from an earlier sibling's only in case, and for all below such a directory: its
    copy goes to data/long, so the bundle can be copied whole to exFAT, FAT, Windows or macOS.
    Files' sizes cost a stat each and are 0 unless `sizes` is set: the acquisition reads them in
    its workers, in parallel, and needs none here."""
    # Sources may overlap (a file, then its directory; two artifacts naming one log): each path
    # is yielded once. A later source inside a directory walked whole is left out; a walk skips
    # an earlier source that is not a directory, and a directory an earlier source walked whole.
    walked: set[bytes] = set()  # directory sources walked whole (no depth limit, no excludes), with "/"
    singles: set[bytes] = set()  # sources that are not directories: few
    for index, src in enumerate(sources):
        excluded = src.excluder()
        if src.path in singles or _covered(src.path, walked):
            continue
        try:
            top = os.lstat(src.path)
        except OSError:
            singles.add(src.path)
            yield src.path, src.original, index, 0, None, False  # the worker records the error
            continue
        size = top.st_size if stat.S_ISREG(top.st_mode) and sizes else 0
        yield src.path, src.original, index, size, None, False
        if not stat.S_ISDIR(top.st_mode):
            singles.add(src.path)
            continue
        if src.max_depth == 0:
            continue
        if skip is not None and skip.pseudo(src.path, top):  # only its inside can be our output
            continue
        if src.max_depth is None and not src.excludes:
            walked.add(src.path.rstrip(b"/") + b"/")
        stack: list[tuple[bytes, bytes, int, DirId | None, bool]] = [(src.path, src.original, 1, None, False)]
        held = _HeldDirs()
        try:
            yield from _walk_tree(src, index, stack, held, walked, singles, excluded, skip, on_error, sizes)
        finally:
            held.close()


def _walk_tree(
    src: Source,
    index: int,
    stack: list[tuple[bytes, bytes, int, DirId | None, bool]],
    held: _HeldDirs,
    walked: set[bytes],
    singles: set[bytes],
    excluded: Callable[[str, str], bool],
    skip: Skip | None,
    on_error: Callable[[bytes, str], None] | None,
    sizes: bool,
) -> Iterator[Found]:
    """The walk below one directory source (see `walk`)."""
    while stack:
        dpath, dorig, depth, listed_in, dir_apart = stack.pop()
        try:
            listed_from, entries, fd = _list_dir(dpath, listed_in, sizes, held.take(dpath))
        except OSError as exc:
            if on_error:
                on_error(dpath, exc.strerror or str(exc))
            continue
        subdirs: list[tuple[bytes, bytes, int, DirId | None, bool]] = []
        folded: set[str] = set()  # the names seen so far, case folded
        prefix = dpath.rstrip(b"/") + b"/"
        sep = b"\\" if src.windows else b"/"
        oprefix = dorig if dorig.endswith(sep) else dorig + sep
        for name, is_dir, size in entries:
            orig = oprefix + name
            if src.excludes and excluded(_text(orig), _text(name)):
                continue
            path = prefix + name
            key = _folded(name)
            apart = dir_apart or key in folded
            folded.add(key)
            if not is_dir:
                if not singles or path not in singles:
                    yield path, orig, index, size, listed_from, apart
                continue
            if walked and path + b"/" in walked:
                continue  # an earlier source walked it whole, its own item included
            why = skip.check(path, (fd, name)) if skip is not None else None
            if why == OUTPUT:
                continue
            yield path, orig, index, 0, listed_from, apart
            if why != PSEUDO and (src.max_depth is None or depth < src.max_depth):
                subdirs.append((path, orig, depth + 1, listed_from, apart))
        held.hold(dpath, fd, len(subdirs))
        stack.extend(reversed(subdirs))


class _HeldDirs:
    """Open directories of a walk whose subdirectories are still to be listed, so that each is
    listed through its parent's fd: by path, every level of a deep tree cost the kernel a walk
    of the whole path (and past PATH_MAX one open per component), so collection time grew with
    the square of the depth. At most `limit` are held; beyond that one is opened by path."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self.fds: dict[bytes, list[int]] = {}  # path -> [fd, subdirectories still to list]
        self._done: list[int] = []  # parents handed out for their last subdirectory

    def take(self, path: bytes) -> int | None:
        """The held fd of `path`'s parent, for listing `path`; None if it is not held."""
        parent = path.rstrip(b"/").rpartition(b"/")[0] or b"/"
        entry = self.fds.get(parent)
        if entry is None:
            return None
        entry[1] -= 1
        if entry[1] <= 0:  # its last subdirectory: closed once that one is open
            del self.fds[parent]
            self._done.append(entry[0])
        return entry[0]

    def hold(self, path: bytes, fd: int, subdirs: int) -> None:
        """Keep `path`'s fd for its `subdirs` subdirectories to come (or close it)."""
        self._release()
        if subdirs and len(self.fds) < self.limit:
            self.fds[path.rstrip(b"/") or b"/"] = [fd, subdirs]
        else:
            os.close(fd)

    def _release(self) -> None:
        for fd in self._done:
            os.close(fd)
        self._done.clear()

    def close(self) -> None:
        self._release()
        for fd, _left in self.fds.values():
            os.close(fd)
        self.fds.clear()


def _folded(name: bytes) -> str:
    """A name as filesystems that ignore case compare it: case folded, and in one Unicode
    normalization form (macOS takes `é` as one character or as `e` and an accent alike)."""
    text = name.decode("utf-8", "surrogateescape")
    return text.casefold() if text.isascii() else unicodedata.normalize("NFC", text).casefold()


def _covered(path: bytes, walked: set[bytes]) -> bool:
    probe = path.rstrip(b"/") + b"/"
    return any(probe.startswith(d) for d in walked)


OUTPUT = "output"
PSEUDO = "pseudo"


class Skip:
    """What a walk leaves out, told apart by identity rather than by path, so another path to it
    (a symlinked --out, a bind mount) does not let it in: sealbox's own output (`paths`: not
    even an item), and the inside of pseudo filesystems such as /proc and /sys (their device
    numbers, `pseudo`: the mount point is an item, nothing below it). One lstat per directory
    walked: directories are few next to files."""

    def __init__(self, paths: list[Path], pseudo: frozenset[int] | None = None) -> None:
        self.ids: set[DirId] = set()
        for path in paths:
            with contextlib.suppress(OSError):
                st = path.stat()
                self.ids.add((st.st_dev, st.st_ino))
        self.pseudo_devices = pseudo_devices() if pseudo is None else pseudo
        self.skipped: list[bytes] = []  # own output met on the way
        self.not_walked: list[bytes] = []  # pseudo filesystems met on the way

    def check(self, path: bytes, at: tuple[int, bytes] | None = None) -> str | None:
        """OUTPUT, PSEUDO or None (walk it) for the directory `path` met on the walk; `at` is
        (its parent's fd, its name), which reaches it in one step however deep it is."""
        try:
            st = os.lstat(at[1], dir_fd=at[0]) if at is not None else os.lstat(path)
        except OSError:
            return None
        if (st.st_dev, st.st_ino) in self.ids:
            self.skipped.append(path)
            return OUTPUT
        return PSEUDO if self.pseudo(path, st) else None

    def pseudo(self, path: bytes, st: os.stat_result) -> bool:
        """Whether directory `path` (its lstat `st`) is on a pseudo filesystem: not to be walked."""
        if st.st_dev not in self.pseudo_devices:
            return False
        self.not_walked.append(path)
        return True


def _said(exc: OSError, message: str) -> OSError:
    """A symlink or file found where a directory was listed (ENOTDIR, ELOOP under O_NOFOLLOW),
    said in words; any other error as it is."""
    return OSError(exc.errno, message) if exc.errno in (errno.ENOTDIR, errno.ELOOP) else exc


_STEP = 3072  # bytes of path opened in one call: well under PATH_MAX


def _open_in_steps(path: bytes, per_component: bool = True) -> int:
    """An O_PATH fd of directory `path`, for a path longer than one call takes (PATH_MAX), as
    deep trees made to hide files are: one component at a time, none followed if it is a
    symlink; or, when the caller checks the identity of what it reaches (`per_component`
    False), a few thousand bytes of path at a time, so a deep path costs a few calls, not one
    per level."""
    fd = os.open(b"/" if path.startswith(b"/") else b".", _O_PATH | _O_DIRECTORY)
    try:
        parts = [p for p in path.split(b"/") if p]
        steps: list[bytes] = []
        for part in parts:
            if steps and not per_component and len(steps[-1]) + 1 + len(part) <= _STEP:
                steps[-1] += b"/" + part
            else:
                steps.append(part)
        for step_path in steps:
            step = os.open(step_path, _O_PATH | _O_DIRECTORY | _O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = step
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_listed_dir(path: bytes, listed: DirId | None) -> int:
    """An O_PATH fd of directory `path`, checked to be the very directory the walk listed (whose
    identity is `listed`, when known). One swapped since, for another or for a symlink, raises
    OSError saying so, and is not followed."""
    try:
        try:
            fd = os.open(path, _O_PATH | _O_DIRECTORY | _O_NOFOLLOW)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            fd = _open_in_steps(path, per_component=listed is None)
    except OSError as exc:
        raise _said(exc, "a directory was replaced by a non-directory (not followed)") from None
    if listed is not None:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != listed:
            os.close(fd)
            raise OSError(errno.ESTALE, "a directory was replaced after listing (not followed)")
    return fd


def _list_dir(
    path: bytes, listed_in: DirId | None, sizes: bool = False, parent_fd: int | None = None
) -> tuple[DirId, list[tuple[bytes, bool, int]], int]:
    """The directory's identity, its (name, is a directory, size of a file or 0 when not
    asked for) sorted by name, and its open fd (the caller closes it).
    It is opened through the directory it was listed in (`parent_fd`, that very directory held
    open, or its path checked to be it), so each level of the walk is pinned to the one above."""
    parent, _, name = path.rpartition(b"/")
    if listed_in is None or not name:
        fd = open_noatime(path, _O_DIRECTORY | _O_NOFOLLOW)
    else:
        opened = parent_fd is None
        if parent_fd is None:
            parent_fd = open_listed_dir(parent or b"/", listed_in)
        try:
            fd = open_noatime(name, _O_DIRECTORY | _O_NOFOLLOW, dir_fd=parent_fd)
        except OSError as exc:
            raise _said(exc, "replaced by a non-directory after listing (not followed)") from None
        finally:
            if opened:
                os.close(parent_fd)
    try:
        st = os.fstat(fd)
        out = []
        with os.scandir(fd) as it:
            for entry in it:
                name = os.fsencode(entry.name)
                is_dir = entry.is_dir(follow_symlinks=False)
                size = 0
                if sizes and entry.is_file(follow_symlinks=False):
                    try:
                        size = entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        size = 0
                out.append((name, is_dir, size))
    except BaseException:
        os.close(fd)
        raise
    out.sort()
    return (st.st_dev, st.st_ino), out, fd


def batches(
    tasks: Iterator[Found], next_id: Callable[[], int], progress: ProgressSink
) -> Iterator[list[Task]]:
    """Tasks in batches of BATCH_FILES, ids in walk order. Sizes are not known here: a worker
    hands back what should not share its batch (see `Acquirer.run`, `handed_back`)."""
    batch: list[Task] = []
    for path, orig, index, _size, listed_from, apart in tasks:
        batch.append((next_id(), path, orig, index, listed_from, apart))
        if len(batch) >= BATCH_FILES:
            progress.add_total(len(batch), 0)
            yield batch
            batch = []
    if batch:
        progress.add_total(len(batch), 0)
        yield batch


def handed_back(result: BatchResult, workers: int) -> list[list[Task]]:
    """The batches a worker's leftover becomes: a big file alone, the rest cut so every worker
    gets a share (each share hands back again if it too holds more than a batch's worth)."""
    rest = result.leftover
    if not rest:
        return []
    head = [rest[:1]] if result.alone else []
    rest = rest[1:] if result.alone else rest
    size = max(1, -(-len(rest) // workers))
    return head + [rest[i : i + size] for i in range(0, len(rest), size)]


# ---------------------------------------------------------------- worker side
@dataclass(frozen=True)
class WorkerConfig:
    bundle: bytes
    sources: list[Source]
    immutable: bool
    resolve_names: bool
    views: ViewContext | None = None
    spool: Spool | None = None  # where batch output goes when workers are separate processes
    previous: PreviousBundle | None = None  # a follow-up collection copies only what changed since
    fold_case: bool = False  # the output filesystem ignores case in names


@dataclass
class BatchResult:
    lines: bytes = b""
    manifest: bytes = b""
    files: int = 0
    nbytes: int = 0  # payload bytes copied by this batch
    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (status, kind, collector)
    links: list[tuple[int, int, int]] = field(default_factory=list)  # (id, device, inode)
    events: list[dict[str, Any]] = field(default_factory=list)
    views: list[bytes] = field(default_factory=list)  # the view parts for these items
    spooled: Spooled | None = None  # instead of lines, manifest and views: where they are in the spool
    leftover: list[Task] = field(default_factory=list)  # tasks handed back, not acquired here
    alone: bool = False  # the leftover's first task is a big file, to be a batch of its own
    dirs: list[bytes] = field(default_factory=list)  # output directories this batch made


class Acquirer:
    """Per-process state: one reusable buffer, caches, and the statx reader."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.buf = bytearray(BUFFER)
        self.view = memoryview(self.buf)
        self.stat = StatReader()
        self.made_dirs: set[bytes] = set()
        self.new_dirs: list[bytes] = []  # made during the current batch
        self.users: dict[int, str | None] = {}
        self.groups: dict[int, str | None] = {}
        self.noatime = bool(_O_NOATIME)
        self.immutable_problem: str | None = None
        self.flags = FlagSetter(FS_IMMUTABLE_FL) if config.immutable else None
        self.views = ViewSet(config.views) if config.views is not None else None
        # This batch's open directories: sources' (by path and the identity the walk listed)
        # and copies'. A batch comes from one or a few directories, so each opens once.
        self.dirs: dict[tuple[bytes, DirId | None], int | OSError] = {}
        self.dir_by_path: dict[bytes, int] = {}  # the same fds, by path
        self.out_dirs: dict[bytes, int] = {}
        self.spelled: dict[bytes, bool] = {}  # output directories checked for their spelling

    def run(self, batch: list[Task]) -> BatchResult:
        try:
            return self._run(batch)
        finally:
            for fd in [*self.dirs.values(), *self.out_dirs.values()]:
                if isinstance(fd, int):
                    os.close(fd)
            self.dirs.clear()
            self.dir_by_path.clear()
            self.out_dirs.clear()

    def _run(self, batch: list[Task]) -> BatchResult:
        result = BatchResult()
        lines: list[bytes] = []
        manifest: list[bytes] = []
        items: list[dict[str, Any]] = []
        counts = result.counts
        shared = len(batch) > 1
        for position, task in enumerate(batch):
            if position and result.nbytes >= BATCH_BYTES:
                result.leftover = batch[position:]  # enough for one batch: others take the rest
                break
            item = self.acquire_one(task, result, shared)
            if item is None:
                result.leftover, result.alone = batch[position:], True
                break
            items.append(item)
            if item["kind"] == "file" and item["nlink"] and item["nlink"] > 1:
                result.links.append((task[0], item["device"], item["inode"]))
            if item["stored_as"]:
                manifest.append(manifest_line(item["sha256"], item["stored_as"]))
                result.files += 1
                result.nbytes += item["size"] or 0
            key = (item["status"], item["kind"], item["collector"])
            counts[key] = counts.get(key, 0) + 1
            lines.append(item_line(item))
        result.dirs, self.new_dirs = self.new_dirs, []
        if self.views is not None:  # rendered here, in parallel, from the items in hand
            result.views = self.views.render(items)
        result.lines = b"".join(lines)
        result.manifest = b"".join(manifest)
        if self.config.spool is not None:
            result.spooled = self.config.spool.put([result.lines, result.manifest, *result.views])
            result.lines = result.manifest = b""
            result.views = []
        return result

    def _names(self, uid: int, gid: int) -> tuple[str | None, str | None]:
        if not self.config.resolve_names:
            return None, None
        try:
            user = self.users[uid]
        except KeyError:
            try:
                user = pwd.getpwuid(uid).pw_name
            except KeyError:
                user = None
            self.users[uid] = user
        try:
            group = self.groups[gid]
        except KeyError:
            try:
                group = grp.getgrgid(gid).gr_name
            except KeyError:
                group = None
            self.groups[gid] = group
        return user, group

    def _in_dir(self, path: bytes, listed_from: DirId | None) -> tuple[int | None, bytes]:
        """(directory fd, name) that reach `path` through the very directory the walk listed:
        a directory swapped since for another, or for a symlink, is noticed, not followed."""
        parent, _, name = path.rpartition(b"/")
        if not name:
            return None, path  # "/" itself: nothing above it to pin
        key = (parent or b"/", listed_from)
        got = self.dirs.get(key)
        if got is None:
            try:
                got = self._open_dir(key[0], listed_from)
            except OSError as exc:
                got = exc
            self.dirs[key] = got
            if isinstance(got, int):
                self.dir_by_path[key[0]] = got
        if isinstance(got, OSError):
            raise got
        return got, name

    def _open_dir(self, path: bytes, listed: DirId | None) -> int:
        """`open_listed_dir`, through the parent when this batch has it open: in a deep tree a
        batch goes down level by level, and by path each open would walk the whole path."""
        above, _, name = path.rpartition(b"/")
        above_fd = self.dir_by_path.get(above or b"/")
        if above_fd is None or not name or listed is None:
            return open_listed_dir(path, listed)
        try:
            fd = os.open(name, _O_PATH | _O_DIRECTORY | _O_NOFOLLOW, dir_fd=above_fd)
        except OSError as exc:
            raise _said(exc, "a directory was replaced by a non-directory (not followed)") from None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != listed:
            os.close(fd)
            raise OSError(errno.ESTALE, "a directory was replaced after listing (not followed)")
        return fd

    def acquire_one(self, task: Task, result: BatchResult, shared: bool = False) -> dict[str, Any] | None:
        """The item for one task; None for a big file in a `shared` batch (left to a batch of its
        own, so several big files are copied side by side)."""
        item_id, path, original, index, listed_from, apart = task
        src = self.config.sources[index]
        item = empty_item()  # every field, in sorted order; filled by plain stores (hot path)
        item["id"] = f"{item_id:08d}"
        item["collector"] = src.collector
        item["status"] = "ok"
        try:
            item["source_path"] = original.decode()
        except UnicodeDecodeError:
            item["source_path"] = _text(original)
            item["source_path_b64"] = base64.b64encode(original).decode()
        item["acquired_start"] = rfc3339_ns(time.time_ns())
        try:
            dir_fd, name = self._in_dir(path, listed_from)
            meta = self.stat.lstat(name, dir_fd)
        except OSError as exc:
            item.update(kind="file", status="error", error=_reason(exc))
            item["acquired_end"] = rfc3339_ns(time.time_ns())
            return item
        _fill_meta(item, meta, self._names(meta.uid, meta.gid))
        kind = item["kind"] = meta.kind
        if kind == "file":
            limited = src.max_file_size is not None or src.since_ns or self.config.previous
            skip = self._skip_reason(meta, src, original) if limited else None
            if skip:
                item["status"] = "skipped"
                item["note"] = skip
            elif shared and meta.size >= BIG_FILE:
                return None
            else:
                self._copy(dir_fd, name, original, meta, item, result, apart)
        elif kind == "symlink":
            try:
                target = os.readlink(name, dir_fd=dir_fd)
                item["link_target"] = _text(target)
                if not _is_utf8(target):
                    item["link_target_b64"] = base64.b64encode(target).decode()
            except OSError as exc:
                item.update(status="error", error=_reason(exc))
        item["acquired_end"] = rfc3339_ns(time.time_ns())
        return item

    def _skip_reason(self, meta: Meta, src: Source, original: bytes) -> str | None:
        if self.config.previous is not None:
            state = (meta.size, meta.mtime_ns, meta.ctime_ns, meta.inode, meta.device)
            unchanged = self.config.previous.unchanged(original, state)
            if unchanged:
                return unchanged
        if src.max_file_size is not None and meta.size > src.max_file_size:
            return f"size {meta.size} bytes exceeds the limit of {src.max_file_size} bytes"
        if src.since_ns is not None and meta.mtime_ns < src.since_ns:
            return f"modified {rfc3339_ns(meta.mtime_ns)}, before --since {rfc3339_ns(src.since_ns)}"
        return None

    def _open_source(self, dir_fd: int | None, name: bytes, original: bytes, result: BatchResult) -> int:
        # O_NONBLOCK: if a fifo was swapped in after lstat, open must not hang on it.
        flags = os.O_RDONLY | _O_NOFOLLOW | os.O_NONBLOCK
        if self.noatime:
            try:
                return os.open(name, flags | _O_NOATIME, dir_fd=dir_fd)
            except PermissionError as exc:
                if exc.errno != errno.EPERM:
                    raise
                self.noatime = False
                result.events.append(
                    {
                        "event": "noatime-not-permitted",
                        "path": _text(original),
                        "detail": "O_NOATIME needs file ownership or CAP_FOWNER; reading "
                        "without it from now on in this worker",
                    }
                )
        return os.open(name, flags, dir_fd=dir_fd)

    def _copy(
        self,
        dir_fd: int | None,
        name: bytes,
        original: bytes,
        before: Meta,
        item: dict[str, Any],
        result: BatchResult,
        apart: bool = False,
    ) -> None:
        try:
            fd = self._open_source(dir_fd, name, original, result)
        except OSError as exc:
            item["status"] = "error"
            item["error"] = _reason(exc)
            return
        try:
            at_open = os.fstat(fd)  # plain fstat: only identity is compared here, no birth time needed
            if (
                at_open.st_ino != before.inode
                or at_open.st_dev != before.device
                or not S_ISREG(at_open.st_mode)
            ):
                item["status"] = "error"
                item["error"] = "replaced between stat and open"
                return
            # O_NONBLOCK stays: it has no effect on reading a regular file.
            created = self._create_copy(original, apart, item, result)
            if created is None:  # reached again through an overlapping source
                item["status"] = "skipped"
                item["note"] = ALREADY_COLLECTED
                return
            out, dest, rel = created
            try:
                try:
                    digest, total, grown = self._pump(fd, out, before.size, is_sparse(at_open))
                    after = os.fstat(fd)
                    os.utime(out, ns=(before.atime_ns, before.mtime_ns))
                    if self.flags is not None and self.immutable_problem is None:
                        self.immutable_problem = self.flags.add(out)
                        if self.immutable_problem:
                            result.events.append(
                                {"event": "immutable-flag-unavailable", "detail": self.immutable_problem}
                            )
                finally:
                    os.close(out)
            except OSError:
                # A copy cut short (a read error on a failing disk, a file too big for FAT32) is
                # not the file, and one that no item records would fail the bundle's verification.
                with contextlib.suppress(OSError):
                    os.unlink(dest)
                raise
            item["stored_as"] = rel
            item["sha256"] = digest
            item["size"] = total
            if (
                grown
                or total != before.size
                or after.st_size != total
                or after.st_mtime_ns != before.mtime_ns
                or (after.st_ctime_ns != before.ctime_ns)
            ):
                changes = _changes(before, after, total, grown)
                if changes:
                    item["status"] = "changed"
                    item["note"] = "; ".join(filter(None, [item["note"], *changes]))
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                raise BundleError(
                    f"cannot write the copy of {_text(original)}: {exc.strerror}",
                    "free space on the output disk or choose another --out",
                ) from exc
            item.update(status="error", error=_reason(exc), stored_as=None, sha256=None)
        finally:
            os.close(fd)

    def _create_copy(
        self, original: bytes, apart: bool, item: dict[str, Any], result: BatchResult
    ) -> tuple[int, bytes, str] | None:
        """(fd, path, stored path) of the new copy of `original`; None if it exists already. On
        an output that ignores case (exFAT, FAT: USB sticks), `Report.txt` made first takes the
        place of `report.txt`, which then goes to data/long, named by its exact path."""
        first = long_stored_path(original) if apart else stored_path(original)
        tries = [first] if apart or not self.config.fold_case else [first, long_stored_path(original)]
        for rel in tries:
            dest = self.config.bundle + b"/" + rel.encode()
            try:
                out = self._create(dest)
            except FileExistsError:
                continue
            if rel != first:
                result.events.append(
                    {"event": "name-case-collision", "path": _text(original), "stored_as": rel}
                )
            if apart or rel != first:
                item["note"] = CASE_APART
            return out, dest, rel
        return None

    def _create(self, dest: bytes) -> int:
        """The copy at `dest`, created write-once. FileExistsError when it exists, or when on an
        output that ignores case a directory of its path is there under another spelling."""
        parent, _, name = dest.rpartition(b"/")
        dir_fd = self.out_dirs.get(parent)
        if dir_fd is None:
            if self.config.fold_case and parent not in self.made_dirs:
                os.makedirs(parent, exist_ok=True)
                if not self._spelled_as_is(parent):
                    raise FileExistsError(errno.EEXIST, "a directory differing only in case", parent)
            dir_fd = self._out_dir(parent)
            if parent not in self.made_dirs:
                self.made_dirs.add(parent)
                self.new_dirs.append(parent)
        return os.open(name, _CREATE, 0o444, dir_fd=dir_fd)

    def _out_dir(self, path: bytes) -> int:
        """An O_PATH fd of output directory `path`, made if missing: through its parent when
        this batch has that open (a deep copy tree then costs one call per level, not a walk of
        the whole path from the root for each), else by path."""
        fd = self.out_dirs.get(path)
        if fd is not None:
            return fd
        parent, _, name = path.rpartition(b"/")
        parent_fd = self.out_dirs.get(parent)
        if parent_fd is not None:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=parent_fd)
            fd = os.open(name, _O_PATH | _O_DIRECTORY | _O_NOFOLLOW, dir_fd=parent_fd)
        else:
            os.makedirs(path, exist_ok=True)
            fd = os.open(path, _O_PATH | _O_DIRECTORY | _O_NOFOLLOW)
        self.out_dirs[path] = fd
        return fd

    def _spelled_as_is(self, path: bytes) -> bool:
        """Whether each directory of `path` below the bundle is on disk under this very spelling:
        `Logs` made first hides `logs` on an output that ignores case. One listing per directory."""
        known = self.spelled.get(path)
        if known is None:
            parent, _, name = path.rpartition(b"/")
            known = len(path) <= len(self.config.bundle) or (
                self._spelled_as_is(parent) and name in os.listdir(parent)
            )
            self.spelled[path] = known
        return known

    def _pump(self, fd: int, out: int, expected: int, sparse: bool = False) -> tuple[str, int, bool]:
        """(SHA-256, bytes, grown) of the open source `fd`, copied to `out` as read. At most
        `expected` bytes (its size at stat) are read: a file that grows while it is read (a log
        being written, a sparse file extended) would otherwise be read until the evidence disk
        is full; `grown` says it held more. A `sparse` source is read around its holes."""
        buf, view = self.buf, self.view
        n = os.readv(fd, [buf])
        if n < BUFFER:  # the whole file in one read (EOF): the small-file hot path
            grown = n > expected
            n = min(n, expected)
            chunk = view[:n]
            written = os.write(out, chunk)
            while written < n:
                written += os.write(out, chunk[written:])
            return sha256(chunk).hexdigest(), n, grown
        h = sha256()
        total = 0
        hole = False  # the copy ends in a hole: its length is set at the end
        while n:
            n = min(n, expected - total)
            chunk = view[:n]
            h.update(chunk)
            if n == BUFFER and buf == _ZEROS:
                # A run of zeros, such as a sparse file's hole (lastlog is hundreds of GB of them
                # where user ids are large): skipped in the copy, which stays sparse. The bytes
                # read back are the same; a dense copy could fill the evidence disk.
                os.lseek(out, n, os.SEEK_CUR)
                hole = True
            elif n:
                written = 0
                while written < n:
                    written += os.write(out, chunk[written:])
                hole = False
            total += n
            if total >= expected:
                break
            if sparse and (gap := min(hole_at(fd, total), expected - total)):
                hash_zeros(h, gap)  # a hole is not read; the copy gets the same hole
                os.lseek(out, gap, os.SEEK_CUR)
                hole = True
                total += gap
                os.lseek(fd, total, os.SEEK_SET)
                if total >= expected:
                    break
            n = os.readv(fd, [view[: min(BUFFER, expected - total)]])
        if hole:
            os.ftruncate(out, total)
        grown = total >= expected and bool(os.pread(fd, 1, expected))
        return h.hexdigest(), total, grown


def _fill_meta(item: dict[str, Any], meta: Meta, names: tuple[str | None, str | None]) -> None:
    item["mode"] = meta.mode
    item["uid"] = meta.uid
    item["gid"] = meta.gid
    item["owner"], item["group"] = names
    item["inode"] = meta.inode
    item["device"] = meta.device
    item["nlink"] = meta.nlink
    item["size"] = meta.size
    item["mtime_ns"] = meta.mtime_ns
    item["atime_ns"] = meta.atime_ns
    item["ctime_ns"] = meta.ctime_ns
    item["birthtime_ns"] = meta.birthtime_ns
    item["mtime"] = rfc3339_ns(meta.mtime_ns)
    item["atime"] = rfc3339_ns(meta.atime_ns)
    item["ctime"] = rfc3339_ns(meta.ctime_ns)
    item["birthtime"] = rfc3339_ns(meta.birthtime_ns)


def _changes(before: Meta, after: os.stat_result, read: int, grown: bool = False) -> list[str]:
    out = []
    if grown:
        out.append(f"the file grew past the {before.size} bytes it had when stat'ed: read stopped there")
    if read != before.size:
        out.append(f"read {read} bytes but the file had {before.size} when stat'ed")
    if after.st_size != before.size:
        out.append(f"size changed from {before.size} to {after.st_size} while reading")
    if after.st_mtime_ns != before.mtime_ns:
        out.append(f"mtime changed from {rfc3339_ns(before.mtime_ns)} to {rfc3339_ns(after.st_mtime_ns)}")
    if after.st_ctime_ns != before.ctime_ns and after.st_mtime_ns == before.mtime_ns:
        out.append(f"ctime changed from {rfc3339_ns(before.ctime_ns)} to {rfc3339_ns(after.st_ctime_ns)}")
    return out


def _reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "vanished"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.ELOOP:
        return "became a symlink (not followed)"
    if exc.errno == errno.EFBIG:
        return "too large for the output filesystem (FAT32 holds at most 4 GiB a file)"
    return (exc.strerror or str(exc)).lower()


_worker: Acquirer | None = None


def _init_worker(config: WorkerConfig) -> None:
    global _worker
    _worker = Acquirer(config)


def _run_batch(batch: list[Task]) -> BatchResult:
    assert _worker is not None
    return _worker.run(batch)


# ---------------------------------------------------------------- main side
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
        os.fsencode(writer.path),
        sources,
        writer.immutable,
        resolve_names,
        writer.view_context,
        spool,
        previous,
        ignores_case(writer.path),
    )
    first_link: dict[tuple[int, int], int] = dict(links or {})

    def walk_error(path: bytes, why: str) -> None:
        writer.log.warning("directory-unreadable", path=_text(path), error=why)
        stats.unlisted_dirs.append(f"{_text(path)}: {why}")

    def handle(res: BatchResult) -> None:
        if res.spooled is not None:
            assert spool is not None
            ranges = res.spooled.ranges()
            if res.links:  # rare: the notes need the lines themselves
                res.lines, res.manifest = spool.read(*ranges[0]), spool.read(*ranges[1])
            else:
                writer.append_items_from(spool, ranges[0], ranges[1], res.files, res.nbytes)
            writer.views.append_from(spool, ranges[2:])
            spool.release(res.spooled)
        if res.lines:
            lines = _note_links(res.lines, res.links, first_link) if res.links else res.lines
            writer.append_items(lines, res.manifest, res.files, res.nbytes)
        if res.views:
            writer.append_views(res.views)
        if res.dirs:
            writer.note_payload_dirs(res.dirs)
        done = 0
        for (status, kind, collector), n in res.counts.items():
            done += n
            stats.by_status[status] = stats.by_status.get(status, 0) + n
            stats.by_kind[kind] = stats.by_kind.get(kind, 0) + n
            stats.by_collector[collector] = stats.by_collector.get(collector, 0) + n
        stats.items += done
        stats.files += res.files
        stats.bytes += res.nbytes
        for event in res.events:
            name = event.pop("event")
            writer.log.warning(name, **event)
            if name == "name-case-collision":
                stats.case_collisions += 1
        progress.advance(done, res.nbytes)

    # The bundle being written, and the --out directory holding it, are never evidence of the
    # host: an --out inside a source would otherwise collect the bundle into itself.
    own = Skip([writer.path, writer.path.parent])
    found = walk(sources, walk_error, own)
    if skip:
        found = (task for task in found if task[1] not in skip)
    work = batches(found, writer.next_id, progress)
    try:
        with few_collections():
            for result in ordered_map(
                _run_batch,
                work,
                workers,
                _init_worker,
                (config,),
                more=lambda res: handed_back(res, workers),
            ):
                handle(result)
    finally:
        if spool is not None:
            spool.close()
    if own.skipped:
        writer.log.info("output-not-collected", paths=[_text(p) for p in own.skipped])
    if own.not_walked:
        stats.not_walked = [_text(p) for p in own.not_walked]
        writer.log.warning(
            "pseudo-filesystem-not-walked",
            paths=stats.not_walked,
            detail="kernel state, not stored files (volatile state is captured on its own)",
        )
    return stats


def _note_links(lines: bytes, links: list[tuple[int, int, int]], first: dict[tuple[int, int], int]) -> bytes:
    """Hard links are copied like any file, and noted so the shared inode is visible."""
    notes: dict[str, str] = {}
    for item_id, device, inode in links:
        key = (device, inode)
        if key in first:
            notes[f"{item_id:08d}"] = f"hard link: shares inode with item {first[key]:08d}"
        else:
            first[key] = item_id
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
