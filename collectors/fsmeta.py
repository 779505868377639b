"""Reading a source's metadata without touching it: statx (birth time)."""

from __future__ import annotations

import ctypes
import os
import stat
import struct
import sys
from typing import TYPE_CHECKING, NamedTuple

from manifest.osio.libc import libc as c_library

if TYPE_CHECKING:
    from collections.abc import Callable

_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_EMPTY_PATH = 0x1000
_STATX_ALL = 0x0FFF  # basic stats + btime
_STATX_BTIME = 0x0800
_NS = 1_000_000_000
# struct statx up to stx_dev_minor: mask, blksize, attributes, nlink, uid, gid, mode, spare, ino,
# size, blocks, attributes_mask, four statx_timestamp {s64 sec; u32 nsec; s32 pad} (atime, btime,
# ctime, mtime), rdev major/minor, dev major/minor.
_STATX = struct.Struct("<IIQIIIHHQQQQqIiqIiqIiqIiIIII")


class Meta(NamedTuple):
    """The stat fields an item records, times as integer nanoseconds. A tuple: built once per
    acquired file, so it must be cheap."""

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
    blocks: int | None = None  # 512-byte blocks allocated: fewer than the size says there are holes

    @property
    def kind(self) -> str:
        return _KINDS.get(self.mode & 0o170000, "special")

    @property
    def sparse(self) -> bool:
        """Fewer blocks than bytes: the file may have holes (or is compressed by its filesystem)."""
        return self.blocks is not None and self.blocks * 512 < self.size


_KINDS = {stat.S_IFREG: "file", stat.S_IFLNK: "symlink", stat.S_IFDIR: "directory"}


def _load_statx() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = c_library().statx
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
        getattr(st, "st_blocks", None),
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
        f = _STATX.unpack_from(self._buf)
        return Meta(
            f[6],  # mode
            f[4],  # uid
            f[5],  # gid
            f[9],  # size
            f[8],  # inode
            os.makedev(f[26], f[27]),
            f[3],  # nlink
            f[12] * _NS + f[13],  # atime
            f[21] * _NS + f[22],  # mtime
            f[18] * _NS + f[19],  # ctime
            f[15] * _NS + f[16] if f[0] & _STATX_BTIME else None,
            os.makedev(f[24], f[25]),
            f[10],  # blocks
        )

    def lstat(self, path: bytes, dir_fd: int | None = None) -> Meta:
        """Not following a symlink; a relative `path` is looked up in `dir_fd`."""
        if _statx is None:
            return _from_stat(os.stat(path, dir_fd=dir_fd, follow_symlinks=False))
        return self._call(_AT_FDCWD if dir_fd is None else dir_fd, path, _AT_SYMLINK_NOFOLLOW)

    def fstat(self, fd: int) -> Meta:
        if _statx is None:
            return _from_stat(os.fstat(fd))
        return self._call(fd, b"", _AT_EMPTY_PATH)
