"""What every view shares: the acquisition's context, the `View` protocol, the `ViewSpec` a
view is registered with, and the escaping rules (a path is printable text in every view)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from manifest import TOOL_NAME, __version__

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from contextlib import AbstractContextManager
    from pathlib import Path
    from typing import IO

    from manifest.osio.spool import Spool
    from manifest.signing.keys import Identity

# An item as a view is given it, with whether `plain_file` accepts it (decided once per item).
Shown = tuple[dict[str, Any], bool]


@dataclass(frozen=True)
class ViewContext:
    """What the views say about the acquisition as a whole (not per item). Every field is
    required: the bundle writer builds it explicitly, so a renamed attribute fails there and
    never silently blanks a field of the CASE or DFXML view."""

    case: str
    bundle_id: str
    host: str
    performer: Identity  # who signs the bundle
    started: str  # RFC 3339
    command_line: str
    ended: str | None = None  # None: the time the view is closed
    tool: str = TOOL_NAME
    version: str = __version__


class View(Protocol):
    """One view of items.jsonl, written to one file under metadata/.

    `render` is pure (acquisition workers call it on their batches, in parallel, and the main
    process adds the parts in item order); volatile snapshots are never given to a view. A batch
    renders to `parts` blobs, which `add` (or `add_from`, copying them from a worker's spool in
    the kernel) appends to the view's file; `begin` and `end` write its header and footer."""

    parts: int

    def begin(self, out: IO[bytes], scratch_dir: Path) -> None: ...

    def render(self, items: Sequence[Shown]) -> list[bytes]: ...

    def add(self, out: IO[bytes], parts: Sequence[bytes]) -> None: ...

    def add_from(self, out: IO[bytes], spool: Spool, ranges: Sequence[tuple[int, int]]) -> None: ...

    def end(self, out: IO[bytes]) -> None: ...


@dataclass(frozen=True)
class ViewSpec:
    """A view as it is registered (manifest/views/registry.py): its name, the file it writes
    under metadata/, and the class that renders it."""

    name: str
    filename: str
    view: Callable[[ViewContext], View]


class FragmentView:
    """A view whose file is a header, one fragment per item, and a footer (bodyfile, DFXML).
    Subclasses give `fragment` and may give `plain`, `begin` and `end`."""

    parts = 1

    def begin(self, out: IO[bytes], scratch_dir: Path) -> None:
        """No header."""

    def fragment(self, item: dict[str, Any]) -> bytes:
        """The bytes one item adds (any item but a volatile snapshot)."""
        raise NotImplementedError

    def plain(self, item: dict[str, Any]) -> bytes:
        """`fragment` by one template for an item `plain_file` accepts, whose path needs no
        escaping (the per-file hot path); KeyError for a record without every field."""
        return self.fragment(item)

    def render(self, items: Sequence[Shown]) -> list[bytes]:
        out: list[bytes] = []
        for item, plain in items:
            if plain:
                try:
                    out.append(self.plain(item))
                    continue
                except KeyError:  # a record without every field: the general rule copes
                    pass
            out.append(self.fragment(item))
        return [b"".join(out)]

    def add(self, out: IO[bytes], parts: Sequence[bytes]) -> None:
        out.write(parts[0])

    def add_from(self, out: IO[bytes], spool: Spool, ranges: Sequence[tuple[int, int]]) -> None:
        for offset, length in ranges:
            if length:
                out.flush()
                spool.copy(offset, length, out.fileno())

    def end(self, out: IO[bytes]) -> None:
        """No footer."""


class MetadataWriter(Protocol):
    """The part of the bundle writer the views need: a write-once binary file under metadata/,
    and the bundle directory (`path`) for scratch files."""

    path: Path

    def open_metadata(self, name: str) -> AbstractContextManager[IO[bytes]]: ...


_NEEDS_ESCAPE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Anything any view would escape (controls, lone surrogates, XML `&<>`, JSON `"\\`, bodyfile `|`):
# a path without them is written as it is by every view.
_NOT_PLAIN = re.compile('[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff&<>"\\\\|]')


def plain_file(item: dict[str, Any]) -> bool:
    """An acquired regular file whose path needs no escaping in any view: the common case, which
    each view renders with one template (the per-file hot path of a collection)."""
    path = item.get("source_path")
    return (
        item.get("kind") == "file"
        and item.get("status") == "ok"
        and bool(item.get("sha256"))
        and type(path) is str
        and not _NOT_PLAIN.search(path)
        and bool(path)
        and type(item.get("size")) is int  # with a digest, every stat field came from the file
    )


def text_for_view(text: str, extra: str = "") -> str:
    """A path as printable text: control characters, lone surrogates and `extra` become `=XX`.

    The views are for reading; the exact original path (and its bytes) stays in items.jsonl.
    """
    if not _NEEDS_ESCAPE.search(text) and not (extra and any(c in text for c in extra)):
        return text  # the common case, and the hot path
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0 or ch in extra:
            out.append("".join(f"={b:02X}" for b in ch.encode("utf-8")))
        elif 0xDC80 <= code <= 0xDCFF:  # surrogateescape'd byte that was not UTF-8
            out.append(f"={code - 0xDC00:02X}")
        elif 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
            out.append("=3F")
        else:
            out.append(ch)
    return "".join(out)
