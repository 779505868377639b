"""The views of one bundle, written side by side as items are recorded."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from manifest.format.items import iter_items
from manifest.views.base import plain_file
from manifest.views.registry import VIEWS

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path
    from typing import IO, TypeVar

    from manifest.osio.spool import Spool
    from manifest.views.base import MetadataWriter, View, ViewContext, ViewSpec

    T = TypeVar("T")


class ViewSet:
    """The registered views (`specs`, normally all of VIEWS). `render` is pure (workers call it
    on their batches); the bundle writer `open`s the files, `append`s rendered parts in id order
    and `close`s at seal. A batch's parts are each view's, in registry order."""

    def __init__(self, ctx: ViewContext, specs: Sequence[ViewSpec] = VIEWS) -> None:
        self.ctx = ctx
        self.specs = tuple(specs)
        self.views: list[View] = [spec.view(ctx) for spec in self.specs]
        self.parts = sum(view.parts for view in self.views)
        self._stack: contextlib.ExitStack | None = None
        self._outs: list[IO[bytes]] = []

    def render(self, items: Iterable[dict[str, Any]]) -> list[bytes]:
        """The parts these items add to every view. Volatile snapshots have no file metadata."""
        shown = [(item, plain_file(item)) for item in items if item.get("kind") != "volatile"]
        return [part for view in self.views for part in view.render(shown)]

    def _each(self, parts: Sequence[T]) -> Iterator[tuple[View, IO[bytes], Sequence[T]]]:
        """Each view with its file and its share of `parts` (one batch's, in registry order)."""
        if len(parts) != self.parts:
            raise ValueError(f"{len(parts)} view parts for {self.parts}")
        at = 0
        for view, out in zip(self.views, self._outs, strict=True):
            yield view, out, parts[at : at + view.parts]
            at += view.parts

    def open(self, writer: MetadataWriter) -> None:
        self._stack = contextlib.ExitStack()
        self._outs = [self._stack.enter_context(writer.open_metadata(spec.filename)) for spec in self.specs]
        for view, out in zip(self.views, self._outs, strict=True):
            # Scratch goes on the output medium, never in the examined host's /tmp: writing there
            # could overwrite deleted data that is itself evidence.
            view.begin(out, writer.path)

    def append(self, parts: list[bytes]) -> None:
        """Parts from `render`, in id order."""
        if not parts:
            return
        for view, out, own in self._each(parts):
            view.add(out, own)

    def append_from(self, spool: Spool, ranges: Sequence[tuple[int, int]]) -> None:
        """`append`, for parts a worker put in the spool: copied in the kernel, never read here."""
        for view, out, own in self._each(ranges):
            view.add_from(out, spool, own)

    def close(self) -> None:
        for view, out in zip(self.views, self._outs, strict=True):
            view.end(out)
        if self._stack is not None:
            self._stack.close()  # closing makes each file read-only (open_metadata)


def write_views(
    writer: MetadataWriter, items_path: Path, context: ViewContext, specs: Sequence[ViewSpec] = VIEWS
) -> None:
    """Write every view in one pass over items.jsonl."""
    views = ViewSet(context, specs)
    views.open(writer)
    batch: list[dict[str, Any]] = []
    for item in iter_items(items_path):
        batch.append(item)
        if len(batch) >= 32:  # small batches: memory stays flat however many items
            views.append(views.render(batch))
            batch = []
    views.append(views.render(batch))
    views.close()
