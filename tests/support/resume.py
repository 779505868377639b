"""An interrupted collection, left `.incomplete` through the real code (resume and follow-up tests)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from agent.commands.collect import cli_sources
from collectors.acquire import ProgressSink
from collectors.collection import CollectionRequest, run_collection
from manifest.errors import CollectionInterrupted
from manifest.signing.keys import KeyStore

if TYPE_CHECKING:
    from pathlib import Path

CASE = "C-RESUME"


class StopAfter(ProgressSink):
    """Ctrl-C (a real KeyboardInterrupt in the collecting process) once `limit` items are done."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.done = 0

    def advance(self, files: int, nbytes: int) -> None:
        self.done += files
        if self.done >= self.limit:
            raise KeyboardInterrupt


def make_tree(root: Path) -> Path:
    for d in range(12):
        sub = root / f"dir{d:02d}" / "nested"
        sub.mkdir(parents=True)
        for i in range(60):
            (sub / f"f{i:03d}.log").write_bytes(f"{d}/{i} ".encode() * (50 + i))
    (root / "dir00/nested/f000.log").rename(root / "first.log")
    os.link(root / "first.log", root / "dir11/nested/hardlink.log")
    (root / "dir05/link").symlink_to("../first.log")
    return root


def interrupted(cli, src: Path, out: Path, after: int) -> Path:
    """A bundle left `.incomplete` by an interrupt after `after` items, through the real code."""
    signer = KeyStore(cli.home).load_signer(None)
    request = CollectionRequest(
        case=CASE, out_dir=out, signer=signer, sources=cli_sources((str(src),), (), None, None), workers=2
    )
    with pytest.raises(CollectionInterrupted):
        run_collection(request, StopAfter(after))
    (bundle,) = out.glob("*.incomplete")
    return bundle
