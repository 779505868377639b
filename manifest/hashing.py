"""SHA-256 of files, one at a time or many in parallel (worker processes, batched by size)."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

from manifest.parallel import ordered_map

_BUF = 1 << 20
_O_NOATIME = getattr(os, "O_NOATIME", 0)
BATCH_FILES = 512
BATCH_BYTES = 64 << 20

_buffer: bytearray | None = None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, with one reusable buffer per process."""
    global _buffer
    if _buffer is None:
        _buffer = bytearray(_BUF)
    buf = _buffer
    view = memoryview(buf)
    h = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOATIME)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY)
    try:
        while n := os.readv(fd, [buf]):
            h.update(view[:n])
    finally:
        os.close(fd)
    return h.hexdigest()


def _hash_batch(batch: list[tuple[str, int]]) -> list[tuple[str, str | None, str | None]]:
    out: list[tuple[str, str | None, str | None]] = []
    for path, _size in batch:
        try:
            out.append((path, sha256_file(path), None))
        except OSError as exc:
            out.append((path, None, (exc.strerror or str(exc)).lower()))
    return out


def _batches(files: Iterable[tuple[str, int]]) -> Iterator[list[tuple[str, int]]]:
    batch: list[tuple[str, int]] = []
    total = 0
    for path, size in files:
        if size >= BATCH_BYTES and batch:
            yield batch
            batch, total = [], 0
        batch.append((path, size))
        total += size
        if len(batch) >= BATCH_FILES or total >= BATCH_BYTES:
            yield batch
            batch, total = [], 0
    if batch:
        yield batch


def hash_many(
    files: Iterable[tuple[str, int]],
    workers: int | None = None,
) -> Iterator[tuple[str, str | None, str | None]]:
    """(path, hex digest or None, error or None) for each (path, size), in input order."""
    workers = max(1, workers or os.cpu_count() or 1)
    for results in ordered_map(_hash_batch, _batches(files), workers):
        yield from results
