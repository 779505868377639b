"""Reading a source's metadata without touching it: statx (birth time) and inode flags."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import stat
import struct
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_EMPTY_PATH = 0x1000
_STATX_ALL = 0x0FFF  # basic stats + btime
_STATX_BTIME = 0x0800
# struct statx up to stx_dev_minor: head, four statx_timestamp {s64 sec; u32 nsec; s32 pad}, devs.
_STATX = struct.Struct("<IIQIIIHHQQQQqIiqIiqIiqIiIIII")

FS_IMMUTABLE_FL = 0x10
FS_APPEND_FL = 0x20
_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602


@dataclass(frozen=True, slots=True)
class Meta:
    """The stat fields an item records, times as integer nanoseconds."""

    mode: int
    uid: int
    gid: int
    size: int
    inode: int
    device: int
    nlink: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    birthtime_ns: int | None
    rdev: int = 0

    @property
    def kind(self) -> str:
        fmt = stat.S_IFMT(self.mode)
        if fmt == stat.S_IFREG:
            return "file"
        if fmt == stat.S_IFLNK:
            return "symlink"
        if fmt == stat.S_IFDIR:
            return "directory"
        return "special"


def _load_statx() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.statx
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
    fn.restype = ctypes.c_int
    return fn


_statx = _load_statx()


def _from_stat(st: os.stat_result) -> Meta:
    birth = getattr(st, "st_birthtime", None)
    return Meta(
        st.st_mode,
        st.st_uid,
        st.st_gid,
        st.st_size,
        st.st_ino,
        st.st_dev,
        st.st_nlink,
        st.st_atime_ns,
        st.st_mtime_ns,
        st.st_ctime_ns,
        int(birth * 1_000_000_000) if birth is not None else None,
        st.st_rdev,
    )


class StatReader:
    """statx(2) through ctypes with one reusable buffer per process; os.lstat elsewhere."""

    def __init__(self) -> None:
        self._buf = ctypes.create_string_buffer(256)

    def _call(self, dirfd: int, path: bytes, flags: int) -> Meta:
        assert _statx is not None
        if _statx(dirfd, path, flags, _STATX_ALL, self._buf) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
        (
            mask,
            _blk,
            _attrs,
            nlink,
            uid,
            gid,
            mode,
            _sp,
            ino,
            size,
            _blocks,
            _am,
            a_s,
            a_n,
            _p1,
            b_s,
            b_n,
            _p2,
            c_s,
            c_n,
            _p3,
            m_s,
            m_n,
            _p4,
            r_maj,
            r_min,
            d_maj,
            d_min,
        ) = _STATX.unpack_from(self._buf.raw)
        return Meta(
            mode,
            uid,
            gid,
            size,
            ino,
            os.makedev(d_maj, d_min),
            nlink,
            a_s * 1_000_000_000 + a_n,
            m_s * 1_000_000_000 + m_n,
            c_s * 1_000_000_000 + c_n,
            b_s * 1_000_000_000 + b_n if mask & _STATX_BTIME else None,
            os.makedev(r_maj, r_min),
        )

    def lstat(self, path: bytes) -> Meta:
        if _statx is None:
            return _from_stat(os.lstat(path))
        return self._call(_AT_FDCWD, path, _AT_SYMLINK_NOFOLLOW)

    def fstat(self, fd: int) -> Meta:
        if _statx is None:
            return _from_stat(os.fstat(fd))
        return self._call(fd, b"", _AT_EMPTY_PATH)


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
        if exc.errno in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL):
            return "filesystem does not support inode flags"
        if exc.errno == errno.EPERM:
            return "not permitted (needs root / CAP_LINUX_IMMUTABLE)"
        return exc.strerror or str(exc)
    return None
