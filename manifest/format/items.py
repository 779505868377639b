"""The item record (SPEC §3): its fields and the one way to write a line of items.jsonl."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# In every item line, null until known.
ALWAYS = tuple(
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
# Only when needed: the exact bytes of a path or link text that is not UTF-8 (FORMAT.md §3).
WHEN_NEEDED = ("link_target_b64", "source_path_b64")
# Every field an item line can have; nothing else is written.
FIELDS = tuple(sorted(ALWAYS + WHEN_NEEDED))
KINDS = ("file", "symlink", "directory", "special", "volatile")
STATUSES = ("ok", "changed", "skipped", "error")


def empty_item() -> dict[str, Any]:
    """Every field of ALWAYS present (null until known), inserted in sorted order."""
    return dict.fromkeys(ALWAYS)


def item_line(item: dict[str, Any], in_order: bool = False) -> bytes:
    """Compact UTF-8 JSON, keys sorted, one line. orjson writes the same bytes as
    `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`, several times faster
    (this runs once per acquired file). `in_order`: the caller knows the keys were inserted in
    sorted order (an `empty_item` given no other field), so the sort is skipped (a quarter of the
    cost)."""
    try:
        return orjson.dumps(item, option=_IN_ORDER if in_order else _SORTED)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: the standard library takes it
        return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
_IN_ORDER = orjson.OPT_APPEND_NEWLINE


def parse_item(line: bytes) -> Any:
    """One line of items.jsonl back to its object (ValueError if it is not JSON). A line orjson
    refuses but JSON allows (an escaped lone surrogate) is read by the standard library. Nesting
    deeper than orjson's 1024 levels is a ValueError, never a RecursionError."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise ValueError("nested deeper than 1024 levels") from None
    try:
        return json.loads(line)
    except RecursionError:  # the standard library's own nesting limit: bad input, not a crash
        raise ValueError("nested too deeply") from None


def iter_items(items_path: Path) -> Iterator[dict[str, Any]]:
    """Items one at a time, in file order (items.jsonl is sorted by id); memory stays flat."""
    with items_path.open("rb") as fh:
        for raw in fh:
            if raw.strip():
                yield parse_item(raw)


def original_path(item: dict[str, Any]) -> bytes:
    """The exact bytes of an item's original path (`source_path_b64` when they are not UTF-8)."""
    b64 = item.get("source_path_b64")
    return base64.b64decode(b64) if b64 else str(item.get("source_path") or "").encode()
