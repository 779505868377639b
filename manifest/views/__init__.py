"""Views of items.jsonl for investigators' own tools, written at seal into metadata/."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.bundle import BundleWriter


def write_views(writer: BundleWriter, items_path: Path) -> None:
    """Write every view (bodyfile, DFXML, CASE) from the finished items.jsonl."""
