"""Views of metadata/items.jsonl for investigators' own tools, written at seal (SPEC §1).

items.jsonl stays the authoritative record; each view is derived from it in one streaming
pass (or two for CASE), so memory does not grow with the number of items.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import socket
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from manifest import TOOL_NAME, __version__
from manifest.format.items import iter_items
from manifest.format.timefmt import now_rfc3339, rfc3339_ns

if TYPE_CHECKING:
    from collections.abc import Iterable
    from contextlib import AbstractContextManager
    from pathlib import Path
    from typing import IO

    from manifest.osio.spool import Spool
    from manifest.views.case_jsonld import CaseView


@dataclass(frozen=True)
class ViewContext:
    """What the views say about the acquisition as a whole (not per item)."""

    case: str = ""
    bundle_id: str = ""
    host: str = field(default_factory=socket.gethostname)
    performer_name: str = ""
    performer_role: str = ""
    performer_organization: str = ""
    performer_key: str = ""
    started: str | None = None
    ended: str | None = None
    command_line: str = ""
    tool: str = TOOL_NAME
    version: str = __version__

    @classmethod
    def from_writer(cls, writer: object) -> ViewContext:
        """What a `BundleWriter` knows at seal time: case, bundle id, host, signer, start."""
        signer = getattr(writer, "signer", None)
        identity = getattr(signer, "identity", None)
        started = getattr(writer, "started_ns", None)
        return cls(
            case=str(getattr(writer, "case", "")),
            bundle_id=str(getattr(writer, "bundle_id", "")),
            host=str(getattr(writer, "host", "") or socket.gethostname()),
            performer_name=getattr(identity, "name", ""),
            performer_role=getattr(identity, "role", ""),
            performer_organization=getattr(identity, "organization", ""),
            performer_key=getattr(identity, "fingerprint", ""),
            started=rfc3339_ns(started) if isinstance(started, int) else None,
            ended=now_rfc3339(),
            command_line=shlex.join(sys.argv),
        )


class MetadataWriter(Protocol):
    """The part of the bundle writer the views need: a write-once binary file under metadata/,
    and the bundle directory (`path`) for scratch files."""

    path: Path

    def open_metadata(self, name: str) -> AbstractContextManager[IO[bytes]]: ...


class View(Protocol):
    """One view: a header, a pure fragment per item (rendered anywhere, e.g. in acquisition
    workers), appended in id order, then a footer."""

    name: str

    def begin(self, out: IO[bytes]) -> None: ...

    def fragment(self, item: dict[str, Any]) -> bytes: ...

    def plain(self, item: dict[str, Any]) -> bytes:
        """The same as `fragment`, for an item `plain_file` accepts: one template, no escaping."""
        ...

    def end(self, out: IO[bytes]) -> None: ...


VIEW_NAMES = ("bodyfile.txt", "dfxml.xml", "case.jsonld")


class ViewSet:
    """The three views of one bundle. `render` is pure (workers call it on their batches); the
    bundle writer `open`s the files, `append`s rendered blobs in id order and `close`s at seal."""

    def __init__(self, ctx: ViewContext) -> None:
        from manifest.views.bodyfile import BodyfileView
        from manifest.views.case_jsonld import CaseView
        from manifest.views.dfxml import DfxmlView

        self.ctx = ctx
        self._case: CaseView = CaseView(ctx)
        self.views: list[View] = [BodyfileView(), DfxmlView(ctx), self._case]
        self._stack: contextlib.ExitStack | None = None
        self._outs: list[IO[bytes]] = []

    def render(self, items: Iterable[dict[str, Any]]) -> list[bytes]:
        """The parts these items add: bodyfile lines, DFXML fileobjects, CASE nodes and CASE refs
        (for the action's result list, written last). Volatile snapshots have no file metadata."""
        body: list[bytes] = []
        dfxml: list[bytes] = []
        nodes: list[bytes] = []
        refs: list[bytes] = []
        bodyfile_view, dfxml_view, _ = self.views
        case_view = self._case
        for item in items:
            if item.get("kind") == "volatile":
                continue
            if plain_file(item):
                try:
                    b, d = bodyfile_view.plain(item), dfxml_view.plain(item)
                    n, r = case_view.plain_parts(item)
                except KeyError:  # a record without every field: the general rule copes
                    pass
                else:
                    body.append(b)
                    dfxml.append(d)
                    nodes.append(n)
                    refs.append(r)
                    continue
            body.append(bodyfile_view.fragment(item))
            dfxml.append(dfxml_view.fragment(item))
            n, r = case_view.parts(item)
            nodes.append(n)
            refs.append(r)
        return [b"".join(body), b"".join(dfxml), b"".join(nodes), b",".join(refs)]

    def open(self, writer: MetadataWriter) -> None:
        # Scratch goes on the output medium, never in the examined host's /tmp: writing there
        # could overwrite deleted data that is itself evidence.
        self._case.scratch_dir = writer.path
        self._stack = contextlib.ExitStack()
        self._outs = [self._stack.enter_context(writer.open_metadata(v.name)) for v in self.views]
        for view, out in zip(self.views, self._outs, strict=True):
            view.begin(out)

    def append(self, parts: list[bytes]) -> None:
        """Parts from `render`, in id order."""
        if not parts:
            return
        body, dfxml, nodes, refs = parts
        self._outs[0].write(body)
        self._outs[1].write(dfxml)
        self._case.add(self._outs[2], nodes, refs)

    def append_from(self, spool: Spool, ranges: list[tuple[int, int]]) -> None:
        """`append`, for parts a worker put in the spool: copied in the kernel, never read here."""
        for out, (offset, length) in zip(self._outs, ranges[:3], strict=True):
            if length:
                out.flush()
                spool.copy(offset, length, out.fileno())
        self._case.add_refs_from(spool, *ranges[3])

    def close(self) -> None:
        for view, out in zip(self.views, self._outs, strict=True):
            view.end(out)
        if self._stack is not None:
            self._stack.close()  # closing makes each file read-only (open_metadata)


def write_views(writer: MetadataWriter, items_path: Path, context: ViewContext | None = None) -> None:
    """Write metadata/bodyfile.txt, dfxml.xml and case.jsonld in one pass over items.jsonl."""
    views = ViewSet(context or ViewContext.from_writer(writer))
    views.open(writer)
    batch: list[dict[str, Any]] = []
    for item in iter_items(items_path):
        batch.append(item)
        if len(batch) >= 32:  # small batches: memory stays flat however many items
            views.append(views.render(batch))
            batch = []
    views.append(views.render(batch))
    views.close()


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
