"""Reading the evidence host without changing it: no writes, and no atime updates where avoidable."""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager
from typing import TYPE_CHECKING

from manifest.osio.readfd import read_at_most

if TYPE_CHECKING:
    from collections.abc import Iterator

_NOATIME = getattr(os, "O_NOATIME", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def open_noatime(path: bytes | str, flags: int = 0, dir_fd: int | None = None) -> int:
    """An fd opened read-only with O_NOATIME; plain read-only when the kernel refuses it (EPERM:
    not the owner and no CAP_FOWNER) — the file is still never written. Non-blocking, so a fifo
    planted where a file was expected (on a host, in a bundle) cannot hang the open; reading a
    regular file is the same either way."""
    base = os.O_RDONLY | _CLOEXEC | os.O_NONBLOCK | flags
    if _NOATIME:
        try:
            return os.open(path, base | _NOATIME, dir_fd=dir_fd)
        except PermissionError:
            pass
    return os.open(path, base, dir_fd=dir_fd)


@contextmanager
def opened(path: bytes | str, *, follow: bool = True) -> Iterator[int]:
    fd = open_noatime(path, 0 if follow else _NOFOLLOW)
    try:
        yield fd
    finally:
        os.close(fd)


def regular_size(fd: int, path: bytes | str | os.PathLike[str]) -> int:
    """The size of the regular file open as `fd`; OSError for anything else (a fifo, a device:
    never read)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file", os.fsdecode(path))
    return st.st_size


def read_bytes(path: bytes | str, limit: int = 16 * 1024 * 1024, *, follow: bool = True) -> bytes:
    """Up to `limit` bytes of a regular file (OSError for anything else)."""
    with opened(path, follow=follow) as fd:
        regular_size(fd, path)
        return read_at_most(fd, limit)


def list_dir(path: bytes) -> list[tuple[bytes, bool, bool]]:
    """Sorted (name, is_dir, is_symlink) of a directory, read through an O_NOATIME fd so the
    listing does not touch the directory's atime. Never follows symlinks."""
    fd = open_noatime(path, os.O_DIRECTORY)
    try:
        entries = []
        with os.scandir(fd) as it:
            for entry in it:
                try:
                    is_link = entry.is_symlink()
                    is_dir = not is_link and entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_link = is_dir = False
                entries.append((os.fsencode(entry.name), is_dir, is_link))
    finally:
        os.close(fd)
    return sorted(entries)
