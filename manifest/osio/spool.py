"""Worker output through one shared, unnamed file instead of pipes.

A batch of 256 small files makes about 800 KB of item lines and view fragments. Pickled through
a pipe that is copied five times and unpickled by the main process; written here it is written
once by the worker and copied into place inside the kernel (copy_file_range), in id order, by
the main process. Copied ranges are punched out, so the spool does not grow with the run.
"""

from __future__ import annotations

import ctypes
import errno
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

from manifest.osio.libc import libc as c_library
from manifest.osio.parallel import context

_FALLOC_FL_KEEP_SIZE = 0x1
_FALLOC_FL_PUNCH_HOLE = 0x2
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}


class Spooled(NamedTuple):
    """Where a worker put its parts: the first byte and each part's length, in order."""

    offset: int
    lengths: tuple[int, ...]

    def ranges(self) -> list[tuple[int, int]]:
        out = []
        at = self.offset
        for length in self.lengths:
            out.append((at, length))
            at += length
        return out


class Spool:
    """Create before starting the workers. Forked, they inherit the file and the shared end
    offset; started otherwise (spawn, forkserver), they get it pickled and open the same file
    again through /proc (it has no name to open it by)."""

    def __init__(self, directory: Path) -> None:
        try:  # no name at all: nothing to clean up, nothing visible in the bundle
            self.fd = os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
        except (AttributeError, OSError):
            self.fd, name = tempfile.mkstemp(dir=directory, prefix=".spool-")
            Path(name).unlink()
        self._end = context().Value("q", 0)
        try:
            self._fallocate = getattr(c_library(), "fallocate", None)
        except OSError:
            self._fallocate = None
        if self._fallocate is not None:
            self._fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]

    def __getstate__(self) -> dict[str, object]:
        # An fd number means nothing in a process that did not inherit it: the worker opens the
        # file again by this process's /proc entry (still open here, so it is the same file).
        state = {k: v for k, v in self.__dict__.items() if k != "_fallocate"}
        state["fd"] = f"/proc/{os.getpid()}/fd/{self.fd}"
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.fd = os.open(str(state["fd"]), os.O_RDWR | os.O_CLOEXEC)
        self._fallocate = None  # the main process alone punches copied ranges out

    def put(self, parts: list[bytes]) -> Spooled:
        """Worker side: write the parts once, at a range no other worker gets."""
        blob = b"".join(parts)
        with self._end.get_lock():
            offset = self._end.value
            self._end.value = offset + len(blob)
        view = memoryview(blob)
        at = offset
        while view:
            n = os.pwrite(self.fd, view, at)
            view, at = view[n:], at + n
        return Spooled(offset, tuple(len(p) for p in parts))

    def read(self, offset: int, length: int) -> bytes:
        chunks = []
        while length > 0:
            chunk = os.pread(self.fd, length, offset)
            if not chunk:
                raise OSError(errno.EIO, "spool file shorter than what was written to it")
            chunks.append(chunk)
            offset, length = offset + len(chunk), length - len(chunk)
        return b"".join(chunks)

    def copy(self, offset: int, length: int, out_fd: int) -> None:
        """Main side: append the range to `out_fd` (at its file position). A target the kernel
        cannot copy to (another filesystem, say) gets the bytes through this process instead;
        that says nothing about the other targets, so each copy tries the kernel first."""
        while length > 0:
            try:
                n = os.copy_file_range(self.fd, out_fd, length, offset)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                n = 0
            if n == 0:
                break
            offset, length = offset + n, length - n
        if length > 0:
            data = memoryview(self.read(offset, length))
            while data:
                data = data[os.write(out_fd, data) :]

    def release(self, spooled: Spooled) -> None:
        """Free a batch's range once it is copied (best effort: a filesystem may not punch)."""
        total = sum(spooled.lengths)
        if self._fallocate is not None and total:
            self._fallocate(self.fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, spooled.offset, total)

    def close(self) -> None:
        os.close(self.fd)
