"""Reading an open file descriptor no further than a cap (collectors and verify both read this way)."""

from __future__ import annotations

import os


def read_at_most(fd: int, limit: int) -> bytes:
    """Up to `limit` bytes from `fd`'s current offset, fewer at end of file; at most 1 MiB per read."""
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
