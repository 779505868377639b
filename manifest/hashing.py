"""SHA-256 of files: one at a time, or a batch of payload files checked against their digests."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass, field

from collectors.readonly import open_noatime

_BUF = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

_buffer: bytearray | None = None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, with one reusable buffer per process."""
    global _buffer
    if _buffer is None:
        _buffer = bytearray(_BUF)
    buf = _buffer
    view = memoryview(buf)
    h = hashlib.sha256()
    fd = open_noatime(os.fsencode(path))
    try:
        while n := os.readv(fd, [buf]):
            h.update(view[:n])
    finally:
        os.close(fd)
    return h.hexdigest()


@dataclass
class BatchCheck:
    """What checking one batch of payload files found: counts, and only the files that differ."""

    files: int = 0  # regular files found and read
    nbytes: int = 0
    missing: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str, int]] = field(default_factory=list)  # (rel, why, size on disk)
    changed: list[tuple[str, str, str]] = field(default_factory=list)  # (rel, expected, found)
    order: list[tuple[str, int]] = field(default_factory=list)  # (kind, index) of unreadable/changed


def check_batch(base: str, entries: list[tuple[str, str]]) -> BatchCheck:
    """Hash each bag-relative file under `base` and compare it with its expected digest.
    Never follows a symlink; a file is read once, in one call when it is small."""
    global _buffer
    if _buffer is None:
        _buffer = bytearray(_BUF)
    buf = _buffer
    view = memoryview(buf)
    out = BatchCheck()
    for rel, expected in entries:
        try:
            fd = open_noatime(base + rel, _NOFOLLOW)
        except FileNotFoundError:
            out.missing.append(rel)
            continue
        except OSError as exc:
            size = lstat_size(base + rel)
            why = "a symlink, not a file" if exc.errno == errno.ELOOP else (exc.strerror or str(exc)).lower()
            out.order.append(("unreadable", len(out.unreadable)))
            out.unreadable.append((rel, why, size))
            continue
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                out.missing.append(rel)
                continue
            if not stat.S_ISREG(st.st_mode):
                out.order.append(("unreadable", len(out.unreadable)))
                out.unreadable.append((rel, "not a regular file", 0))
                continue
            n = os.readv(fd, [buf])
            if n < _BUF and n >= st.st_size:  # the whole file in one read (files in a bag do not grow)
                found = hashlib.sha256(view[:n]).hexdigest()
            else:
                h = hashlib.sha256(view[:n])
                while n := os.readv(fd, [buf]):
                    h.update(view[:n])
                found = h.hexdigest()
        except OSError as exc:
            out.order.append(("unreadable", len(out.unreadable)))
            out.unreadable.append((rel, (exc.strerror or str(exc)).lower(), 0))
            continue
        finally:
            os.close(fd)
        out.files += 1
        out.nbytes += st.st_size
        if found != expected:
            out.order.append(("changed", len(out.changed)))
            out.changed.append((rel, expected, found))
    return out


def lstat_size(path: str) -> int:
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    return st.st_size if not stat.S_ISDIR(st.st_mode) else 0
