"""The worker side: each task's item, and its copy read once to hash and write it.

Runs in the pool's worker processes (or in the main one, with one worker). The copy is write-once
in the bundle, sparse where the source has holes, and placed apart (data/long) where a name would
collide with another on an output filesystem that ignores case.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import grp
import os
import pwd
import time
from hashlib import sha256
from stat import S_ISREG
from typing import Any

from collectors.acquire.records import (
    BatchResult,
    CountKey,
    DirId,
    HardLink,
    ImmutableFlagUnavailable,
    NameCaseCollision,
    NoatimeNotPermitted,
    Source,
    Task,
    WorkerConfig,
)
from collectors.acquire.walk import REPLACED, check_identity, open_listed_dir, said, text
from collectors.fsmeta import Meta, StatReader
from manifest.errors import BundleError
from manifest.format.bagit import manifest_line
from manifest.format.items import ALWAYS, empty_item, item_line
from manifest.format.pathenc import long_stored_path, stored_path
from manifest.format.timefmt import rfc3339_ns
from manifest.hashing import hash_zeros, hole_at
from manifest.osio.flags import FS_IMMUTABLE_FL, FlagSetter
from manifest.views import ViewSet

BATCH_BYTES = 32 << 20  # a worker hands back the rest of a batch once it has copied this much
BIG_FILE = 8 << 20  # a file this big is copied in a batch of its own, so big files spread
BUFFER = 1 << 20
ALREADY_COLLECTED = "already collected in this bundle through another source"
CASE_APART = (
    "stored under data/long: a name differing from another only in case would collide where case "
    "is ignored (exFAT, FAT, Windows, macOS)"
)
_ZEROS = bytes(BUFFER)
_FIELDS = len(ALWAYS)
_O_NOATIME = getattr(os, "O_NOATIME", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_PATH = getattr(os, "O_PATH", os.O_RDONLY)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


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
        counts: dict[tuple[str, str, str], int] = {}  # plain tuples per item; named once per batch
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
                result.links.append(HardLink(task.id, item["device"], item["inode"]))
            if item["stored_as"]:
                manifest.append(manifest_line(item["sha256"], item["stored_as"]))
                result.files += 1
                result.nbytes += item["size"] or 0
            key = (item["status"], item["kind"], item["collector"])
            counts[key] = counts.get(key, 0) + 1
            lines.append(item_line(item, len(item) == _FIELDS))  # no field added: in order
        result.counts = {CountKey(*key): n for key, n in counts.items()}
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
            raise said(exc, REPLACED) from None
        return check_identity(fd, listed)

    def acquire_one(self, task: Task, result: BatchResult, shared: bool = False) -> dict[str, Any] | None:
        """The item for one task; None for a big file in a `shared` batch (left to a batch of its
        own, so several big files are copied side by side)."""
        item_id, path, original, index, listed_from, apart, is_file = task  # unpacked once: the hot path
        src: Source = self.config.sources[index]
        item = empty_item()  # every field, in sorted order; filled by plain stores (hot path)
        item["id"] = f"{item_id:08d}"
        item["collector"] = src.collector
        item["status"] = "ok"
        try:
            item["source_path"] = original.decode()
        except UnicodeDecodeError:
            item["source_path"] = text(original)
            item["source_path_b64"] = base64.b64encode(original).decode()
        item["acquired_start"] = rfc3339_ns(time.time_ns())
        try:
            dir_fd, name = self._in_dir(path, listed_from)
            fd, meta = self._stat(dir_fd, name, original, result, is_file)
        except OSError as exc:
            item.update(kind="file", status="error", error=_reason(exc))
            item["acquired_end"] = rfc3339_ns(time.time_ns())
            return item
        _fill_meta(item, meta, self._names(meta.uid, meta.gid))
        kind = item["kind"] = meta.kind
        if kind == "file":
            limited = src.max_file_size is not None or src.since_ns or self.config.previous
            skip = self._skip_reason(meta, src, original) if limited else None
            if skip or (shared and meta.size >= BIG_FILE):
                if fd is not None:
                    os.close(fd)
                if not skip:
                    return None
                item["status"] = "skipped"
                item["note"] = skip
            else:
                self._copy(dir_fd, name, original, meta, item, result, apart, fd)
        elif kind == "symlink":
            try:
                target = os.readlink(name, dir_fd=dir_fd)
                item["link_target"] = text(target)
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

    def _stat(
        self, dir_fd: int | None, name: bytes, original: bytes, result: BatchResult, is_file: bool
    ) -> tuple[int | None, Meta]:
        """The entry's metadata, and for a regular file (as the walk saw it) the file opened: it
        is opened first and stat'ed through its fd, one path lookup and one stat fewer per file
        than stat, open, and a check that the file opened is the one stat'ed. Anything else, or a
        file that cannot be opened (the copy then records why), is stat'ed by name."""
        if is_file:
            try:
                fd = self._open_source(dir_fd, name, original, result)
            except OSError:
                pass
            else:
                try:
                    meta = self.stat.fstat(fd)
                except BaseException:
                    os.close(fd)
                    raise
                if S_ISREG(meta.mode):
                    return fd, meta
                os.close(fd)  # swapped for something else since the walk: looked at by name
        return None, self.stat.lstat(name, dir_fd)

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
                result.events.append(NoatimeNotPermitted(text(original)))
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
        fd: int | None = None,
    ) -> None:
        """Copy and hash the file `before` describes; `fd` is it already open (closed here)."""
        if fd is None:
            try:
                fd = self._open_source(dir_fd, name, original, result)
            except OSError as exc:
                item["status"] = "error"
                item["error"] = _reason(exc)
                return
            try:
                at_open = os.fstat(fd)  # plain fstat: only identity is compared here
            except OSError as exc:
                os.close(fd)
                item["status"] = "error"
                item["error"] = _reason(exc)
                return
            if (
                at_open.st_ino != before.inode
                or at_open.st_dev != before.device
                or not S_ISREG(at_open.st_mode)
            ):
                os.close(fd)
                item["status"] = "error"
                item["error"] = "replaced between stat and open"
                return
        try:
            # O_NONBLOCK stays: it has no effect on reading a regular file.
            created = self._create_copy(original, apart, item, result)
            if created is None:  # reached again through an overlapping source
                item["status"] = "skipped"
                item["note"] = ALREADY_COLLECTED
                return
            out, dest, rel = created
            try:
                try:
                    digest, total, grown = self._pump(fd, out, before.size, before.sparse)
                    after = os.fstat(fd)
                    os.utime(out, ns=(before.atime_ns, before.mtime_ns))
                    if self.flags is not None and self.immutable_problem is None:
                        self.immutable_problem = self.flags.add(out)
                        if self.immutable_problem:
                            result.events.append(ImmutableFlagUnavailable(self.immutable_problem))
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
                    f"cannot write the copy of {text(original)}: {exc.strerror}",
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
                result.events.append(NameCaseCollision(text(original), rel))
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
    mode, uid, gid, size, inode, device, nlink, atime_ns, mtime_ns, ctime_ns, birth_ns, _rdev, _blocks = meta
    item["mode"] = mode
    item["uid"] = uid
    item["gid"] = gid
    item["owner"], item["group"] = names
    item["inode"] = inode
    item["device"] = device
    item["nlink"] = nlink
    item["size"] = size
    item["mtime_ns"] = mtime_ns
    item["atime_ns"] = atime_ns
    item["ctime_ns"] = ctime_ns
    item["birthtime_ns"] = birth_ns
    # Times are often equal (a file written once): each distinct one is formatted once.
    mtime = item["mtime"] = rfc3339_ns(mtime_ns)
    item["atime"] = mtime if atime_ns == mtime_ns else rfc3339_ns(atime_ns)
    item["ctime"] = mtime if ctime_ns == mtime_ns else rfc3339_ns(ctime_ns)
    item["birthtime"] = None if birth_ns is None else mtime if birth_ns == mtime_ns else rfc3339_ns(birth_ns)


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


_worker: Acquirer | None = None  # this worker process's own


def start_worker(config: WorkerConfig) -> None:
    """The pool's initializer: each worker process gets its own Acquirer."""
    global _worker
    _worker = Acquirer(config)


def run_batch(batch: list[Task]) -> BatchResult:
    """One batch, in a worker process started with `start_worker`."""
    assert _worker is not None
    return _worker.run(batch)
