"""The C library, for the few calls the os module lacks (statx, syncfs, fallocate, unshare, mount,
mallopt)."""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def libc() -> ctypes.CDLL:
    """The C library this process already runs with (its symbols, not a file looked up again);
    OSError where there is none to load. Calls set errno for `ctypes.get_errno()`."""
    return ctypes.CDLL(None, use_errno=True)
