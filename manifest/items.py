"""The item record (SPEC §3): its fields and the one way to write a line of items.jsonl."""

from __future__ import annotations

import json
from typing import Any

FIELDS = tuple(
    sorted(
        (
            "id",
            "kind",
            "collector",
            "source_path",
            "stored_as",
            "size",
            "sha256",
            "mode",
            "uid",
            "gid",
            "owner",
            "group",
            "inode",
            "device",
            "nlink",
            "mtime_ns",
            "atime_ns",
            "ctime_ns",
            "birthtime_ns",
            "mtime",
            "atime",
            "ctime",
            "birthtime",
            "acquired_start",
            "acquired_end",
            "link_target",
            "status",
            "error",
            "note",
        )
    )
)
KINDS = ("file", "symlink", "directory", "special", "volatile")
STATUSES = ("ok", "changed", "skipped", "error")
_SORTED = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_IN_ORDER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def empty_item() -> dict[str, Any]:
    """Every field present (null until known), inserted in sorted order."""
    return dict.fromkeys(FIELDS)


def item_line(item: dict[str, Any]) -> bytes:
    """Compact JSON, keys sorted. An `empty_item()` filled in place is already sorted, so the
    per-file hot path skips sorting; optional extras (`*_b64`) take the sorting path."""
    encoder = _IN_ORDER if len(item) == len(FIELDS) else _SORTED
    return encoder.encode(item).encode() + b"\n"
