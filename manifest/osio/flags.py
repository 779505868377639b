"""Inode flags (immutable, append-only): how a sealed bundle is made write-once on Linux."""

from __future__ import annotations

import errno
import fcntl
import sys

FS_IMMUTABLE_FL = 0x10
FS_APPEND_FL = 0x20
_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602


def get_flags(fd: int) -> int:
    buf = bytearray(8)
    fcntl.ioctl(fd, _FS_IOC_GETFLAGS, buf)
    return int.from_bytes(buf[:4], sys.byteorder)


def add_flags(fd: int, flags: int) -> str | None:
    """Set inode flags (immutable, append-only); None on success, else why not (best effort)."""
    if not sys.platform.startswith("linux"):
        return "not Linux"
    try:
        current = get_flags(fd)
        buf = bytearray((current | flags).to_bytes(4, sys.byteorder) + b"\0\0\0\0")
        fcntl.ioctl(fd, _FS_IOC_SETFLAGS, buf)
    except OSError as exc:
        return _flag_problem(exc)
    return None


def remove_flags(fd: int, flags: int) -> None:
    """Clear inode flags (OSError if that is refused)."""
    current = get_flags(fd)
    if current & flags:
        fcntl.ioctl(
            fd, _FS_IOC_SETFLAGS, bytearray((current & ~flags).to_bytes(4, sys.byteorder) + b"\0" * 4)
        )


def _flag_problem(exc: OSError) -> str:
    if exc.errno in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL):
        return "filesystem does not support inode flags"
    if exc.errno == errno.EPERM:
        return "not permitted (needs root / CAP_LINUX_IMMUTABLE)"
    return exc.strerror or str(exc)


class FlagSetter:
    """Adds inode flags to many freshly created files of one tree. New files there start with the
    same flags, so after the first read-modify-write the same value is written with one ioctl;
    a refusal falls back to reading the file's own flags."""

    def __init__(self, flags: int) -> None:
        self.flags = flags
        self._value: bytearray | None = None

    def add(self, fd: int) -> str | None:
        """None on success, else why not (best effort, as `add_flags`)."""
        if self._value is not None:
            try:
                fcntl.ioctl(fd, _FS_IOC_SETFLAGS, self._value)
                return None
            except OSError:
                pass
        try:
            current = get_flags(fd)
        except OSError as exc:
            return _flag_problem(exc)
        value = bytearray((current | self.flags).to_bytes(4, sys.byteorder) + b"\0\0\0\0")
        try:
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, value)
        except OSError as exc:
            return _flag_problem(exc)
        self._value = value
        return None
