"""SHA-256 of files: one at a time, or a batch of payload files checked against their digests."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from manifest.osio.readonly import open_noatime, regular_size

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

_BUF = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# open_noatime's flags for a payload file, for the loop that opens one per file.
_FAST_OPEN = (
    os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | os.O_NONBLOCK | _NOFOLLOW | getattr(os, "O_NOATIME", 0)
)

_DIR_OPEN = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_DIRECTORY", 0)

_buffer: bytearray | None = None


_ZEROS = memoryview(bytes(_BUF))


def is_sparse(st: os.stat_result) -> bool:
    """Fewer blocks than bytes: the file may have holes (or is compressed by its filesystem)."""
    blocks = getattr(st, "st_blocks", None)
    return blocks is not None and blocks * 512 < st.st_size


def hole_at(fd: int, offset: int) -> int:
    """The length of the hole at `offset` of a sparse file (0 if data is there), leaving `fd` at
    its end; 0 where the filesystem cannot tell (then everything is read)."""
    try:
        data = os.lseek(fd, offset, os.SEEK_DATA)
    except OSError as exc:
        end = os.fstat(fd).st_size if exc.errno == errno.ENXIO else offset  # ENXIO: a hole to EOF
        os.lseek(fd, max(end, offset), os.SEEK_SET)
        return max(end - offset, 0)
    return data - offset


def hash_zeros(h: Any, length: int) -> None:
    """Feed `length` zero bytes to hash `h`: a hole is hashed from memory, never read (the kernel
    would make its zeros a page at a time, several times slower)."""
    for start in range(0, length, _BUF):
        h.update(_ZEROS[: min(_BUF, length - start)])


def _digest(fd: int, size: int, buf: bytearray | None = None, sparse: bool = False) -> str:
    """Hex SHA-256 of an open file, read with `buf` (by default this process's one reusable
    buffer); a file no bigger than the buffer whose size is known takes a single read, and a
    `sparse` one is read around its holes."""
    global _buffer
    if buf is None:
        if _buffer is None:
            _buffer = bytearray(_BUF)
        buf = _buffer
    view = memoryview(buf)
    n = os.readv(fd, [buf])
    if n < len(buf) and n >= size:
        return hashlib.sha256(view[:n]).hexdigest()
    h = hashlib.sha256(view[:n])
    total = n
    while n:
        if sparse and (gap := hole_at(fd, total)):
            hash_zeros(h, gap)
            total += gap
        n = os.readv(fd, [buf])
        h.update(view[:n])
        total += n
    return h.hexdigest()


def sha256_file(path: str | os.PathLike[str], buf: bytearray | None = None) -> str:
    """Hex SHA-256 of a regular file's bytes (OSError for anything else: a link is never followed)."""
    fd = open_noatime(os.fsencode(path), _NOFOLLOW)
    try:
        return _digest(fd, regular_size(fd, path), buf)
    finally:
        os.close(fd)


def sha256_files(paths: Sequence[Path]) -> list[str]:
    """`sha256_file` of each path, in order (the first OSError is raised)."""
    out = []
    for result in sha256_files_or_errors(paths):
        if isinstance(result, OSError):
            raise result
        out.append(result)
    return out


def sha256_files_or_errors(paths: Sequence[Path]) -> list[str | OSError]:
    """`sha256_file` of each path, in order, or the OSError that file gave. Threads hash them side
    by side (reads and hashlib release the GIL), biggest first, each with a buffer of its own."""
    threads = min(len(paths), os.cpu_count() or 1, 4)
    local = threading.local()

    def one(path: Path) -> str | OSError:
        if not hasattr(local, "buf"):
            local.buf = bytearray(_BUF)
        try:
            return sha256_file(path, local.buf)
        except OSError as exc:
            return exc

    if threads < 2:
        return [one(p) for p in paths]
    from concurrent.futures import ThreadPoolExecutor

    order = sorted(range(len(paths)), key=lambda i: -_size(paths[i]))
    with ThreadPoolExecutor(threads) as pool:
        digests = dict(zip(order, pool.map(one, [paths[i] for i in order]), strict=True))
    return [digests[i] for i in range(len(paths))]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # sha256_file reports it


class Problem(NamedTuple):
    """A payload file that did not check out: `unreadable` (detail = why), `changed`
    (detail = expected digest, found = actual) or `size` (not read: detail = expected size)."""

    kind: str
    rel: str
    detail: str
    found: str | None = None
    size: int = 0  # bytes on disk, for Payload-Oxum


@dataclass
class BatchCheck:
    """What checking one batch of payload files found: counts, and only the files that differ."""

    files: int = 0  # regular files found and read
    nbytes: int = 0
    missing: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # in manifest order
    opened: int = 0  # regular files opened (read or not): check_sized_batch only
    inodes: list[int] = field(default_factory=list)  # of those, sorted: check_sized_batch only
    devices: set[int] = field(default_factory=set)

    def add_read(self, rel: str, size: int, expected: str, found: str) -> None:
        """Count a file read whole, and note it when its digest is not the expected one."""
        self.files += 1
        self.nbytes += size
        if found != expected:
            self.problems.append(Problem("changed", rel, expected, found))


def _open_payload(base: str, rel: str, out: BatchCheck) -> int | None:
    """Open one bag-relative file without following a symlink; None (and the finding recorded in
    `out`) when it is missing or cannot be opened."""
    try:
        return open_noatime(base + rel, _NOFOLLOW)
    except FileNotFoundError:
        out.missing.append(rel)
    except OSError as exc:
        why = "a symlink, not a file" if exc.errno == errno.ELOOP else (exc.strerror or str(exc)).lower()
        out.problems.append(Problem("unreadable", rel, why, size=lstat_size(base + rel)))
    return None


def check_batch(base: str, entries: list[tuple[str, str]]) -> BatchCheck:
    """Hash each bag-relative file under `base` and compare it with its expected digest.
    Never follows a symlink."""
    out = BatchCheck()
    for rel, expected in entries:
        fd = _open_payload(base, rel, out)
        if fd is None:
            continue
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                out.missing.append(rel)
                continue
            if not stat.S_ISREG(st.st_mode):
                out.problems.append(Problem("unreadable", rel, "not a regular file"))
                continue
            found = _digest(fd, st.st_size, sparse=is_sparse(st))  # files in a sealed bag do not grow
        except OSError as exc:
            out.problems.append(Problem("unreadable", rel, (exc.strerror or str(exc)).lower()))
            continue
        finally:
            os.close(fd)
        out.add_read(rel, st.st_size, expected, found)
    return out


class Expected(NamedTuple):
    """One payload file to check: its digest, and the size it must have before it is read (the
    size recorded in items.jsonl) or, when none is recorded, the most it may have."""

    rel: str
    digest: str
    size: int | None
    at_most: int | None = None


# An Expected, or a plain tuple of the same fields (cheaper to make by the thousand).
Wanted = tuple[str, str, int | None, int | None]


def check_sized_batch(base: str, entries: Sequence[Wanted]) -> BatchCheck:
    """Like `check_batch`, but a file whose size is not the expected one is never read (it is a
    `size` problem: detail = expected size, found = size on disk), so a file grown to any size
    (sparse) costs one fstat."""
    # The loop of a verification of many small files: a few microseconds a file of Python is as
    # much as its hashing, so the usual case (a file no bigger than the buffer, read whole at
    # once) is inline and the rest goes through the general helpers.
    global _buffer
    if _buffer is None:
        _buffer = bytearray(_BUF)
    buf = _buffer
    view = memoryview(buf)
    out = BatchCheck()
    inodes, devices, problems = out.inodes, out.devices, out.problems
    files = nbytes = 0
    sha256, readv, fstat, close, is_reg = hashlib.sha256, os.readv, os.fstat, os.close, stat.S_ISREG
    os_open, flags = os.open, _FAST_OPEN
    # Each file is opened relative to its directory, kept open while the batch stays in it: the
    # kernel looks up one name per file instead of the whole path (as with the whole path, only
    # the file itself is never followed if it is a link).
    folder, folder_fd = "", -1
    try:
        for rel, expected, size, at_most in entries:
            parent, _slash, name = rel.rpartition("/")
            if parent != folder or folder_fd < 0:
                if folder_fd >= 0:
                    close(folder_fd)
                folder, folder_fd = parent, -1
                with contextlib.suppress(OSError):
                    folder_fd = os_open(base + parent, _DIR_OPEN)
            try:
                if folder_fd < 0 or not name:
                    raise FileNotFoundError(rel)
                fd = os_open(name, flags, dir_fd=folder_fd)
            except OSError:  # missing, a link, or O_NOATIME refused: the general open says which
                opened = _open_payload(base, rel, out)
                if opened is None:
                    continue
                fd = opened
            try:
                st = fstat(fd)
                if not is_reg(st.st_mode):
                    problems.append(Problem("unreadable", rel, "not a regular file"))
                    continue
                inodes.append(st.st_ino)
                devices.add(st.st_dev)
                length = st.st_size
                if size is not None and length != size:
                    problems.append(Problem("size", rel, str(size), str(length), length))
                    continue
                if size is None and at_most is not None and length > at_most:
                    problems.append(Problem("size", rel, f"at most {at_most}", str(length), length))
                    continue
                if length < _BUF and st.st_blocks * 512 >= length and (n := readv(fd, [buf])) == length:
                    found = sha256(view[:n]).hexdigest()  # a short read means the file changed: below
                else:
                    os.lseek(fd, 0, os.SEEK_SET)
                    found = _digest(fd, length, sparse=is_sparse(st))
            except OSError as exc:
                problems.append(Problem("unreadable", rel, (exc.strerror or str(exc)).lower()))
                continue
            finally:
                close(fd)
            files += 1
            nbytes += length
            if found != expected:
                problems.append(Problem("changed", rel, expected, found))
    finally:
        if folder_fd >= 0:
            close(folder_fd)
    out.files, out.nbytes, out.opened = files, nbytes, len(inodes)
    inodes.sort()
    return out


def lstat_size(path: str) -> int:
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    return st.st_size if not stat.S_ISDIR(st.st_mode) else 0
