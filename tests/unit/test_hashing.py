"""SHA-256 of files: one reusable buffer per process, threads with buffers of their own."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

from manifest.hashing import sha256_file, sha256_files

if TYPE_CHECKING:
    from pathlib import Path


def test_digests_match_hashlib_in_the_order_asked(tmp_path: Path) -> None:
    # Sizes around the 1 MiB buffer, and given smallest first: the threads take the biggest
    # first, so a mix-up of the order would show.
    sizes = [0, 1, 4095, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20]
    paths = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i}"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    expected = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    assert sha256_files(paths) == expected
    assert [sha256_file(p) for p in paths] == expected
    assert sha256_files(paths[2:3]) == expected[2:3]
