"""Sleuth Kit bodyfile 3.x (`MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime`).

The MD5 column is `0`: sealbox hashes with SHA-256 only, and tools that read a bodyfile expect
either an MD5 or `0` there, so a SHA-256 in that column would mislead them. The SHA-256 of every
item is in items.jsonl, dfxml.xml and case.jsonld. Times are whole seconds (what mactime reads);
`0` means the platform gave no such time. Volatile snapshots have no file times and are left out.
"""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING, Any

from manifest.views.base import FragmentView, text_for_view

if TYPE_CHECKING:
    from manifest.views.base import ViewContext

_TYPE_CHARS = {"file": "r", "directory": "d", "symlink": "l"}


def mode_string(item: dict[str, Any]) -> str:
    """fls style: `r/rrw-r--r--` (name type / meta type + permissions)."""
    mode = item.get("mode")
    if isinstance(mode, int):
        perms = stat.filemode(mode)  # '-rw-r--r--'; the first char is the file type
        kind = {"-": "r", "?": "-"}.get(perms[0], perms[0])
        return f"{kind}/{kind}{perms[1:]}"
    kind = _TYPE_CHARS.get(str(item.get("kind")), "-")
    return f"{kind}/{kind}---------"


_NS = 1_000_000_000
_MODES: dict[int, str] = {}


def _mode_of(mode: int) -> str:
    text = _MODES.get(mode)
    if text is None:
        text = _MODES[mode] = mode_string({"mode": mode})
    return text


def _secs(ns: Any) -> str:
    return str(ns // 1_000_000_000) if isinstance(ns, int) and ns > 0 else "0"


def _num(value: Any) -> str:
    return str(value) if isinstance(value, int) else "0"


def line(item: dict[str, Any]) -> str | None:
    """One bodyfile line for an item, or None for items without file metadata."""
    if item.get("kind") == "volatile" or not item.get("source_path"):
        return None
    name = text_for_view(str(item["source_path"]), extra="|")
    if item.get("kind") == "symlink" and item.get("link_target"):
        name += " -> " + text_for_view(str(item["link_target"]), extra="|")
    fields = [
        "0",
        name,
        _num(item.get("inode")),
        mode_string(item),
        _num(item.get("uid")),
        _num(item.get("gid")),
        _num(item.get("size")),
        _secs(item.get("atime_ns")),
        _secs(item.get("mtime_ns")),
        _secs(item.get("ctime_ns")),
        _secs(item.get("birthtime_ns")),
    ]
    return "|".join(fields)


class BodyfileView(FragmentView):
    """One line per item; no header, no footer. Says nothing of the acquisition as a whole."""

    def __init__(self, ctx: ViewContext) -> None:
        self.ctx = ctx

    def plain(self, item: dict[str, Any]) -> bytes:
        a, m, c, b = item["atime_ns"], item["mtime_ns"], item["ctime_ns"], item.get("birthtime_ns")
        return (
            f"0|{item['source_path']}|{item['inode']}|{_mode_of(item['mode'])}|{item['uid']}|"
            f"{item['gid']}|{item['size']}|{a // _NS if a > 0 else 0}|{m // _NS if m > 0 else 0}|"
            f"{c // _NS if c > 0 else 0}|{b // _NS if b and b > 0 else 0}\n"
        ).encode()

    def fragment(self, item: dict[str, Any]) -> bytes:
        text = line(item)
        return b"" if text is None else text.encode("utf-8") + b"\n"
