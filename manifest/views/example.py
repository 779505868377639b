"""An example view to copy when adding one. It is not registered, so no bundle has it.

A view turns the item records of metadata/items.jsonl into one more file under metadata/, for
an investigator's own tools. To add one:

1. Copy this module to `manifest/views/<name>.py` and rewrite the class. Subclass `FragmentView`
   when the file is a header, one fragment per item and a footer; implement the `View` protocol
   yourself (as `CaseView` does) when a batch must go to more than one place.
2. Register it with one line in `manifest/views/registry.py`:
   `ViewSpec("<name>", "<file under metadata/>", <Class>)`.
3. Add the file to the bundle layout in manifest/FORMAT.md §1.

`tests/unit/test_view_registry.py` then runs the new view through the checks every view must
pass (a template the same as the general rule, batches and the spool giving the same bytes);
write a test of its own that a real reader of the format accepts it (see tests/unit/test_views.py).

The rules every view keeps:
- `fragment` is pure and fast: acquisition workers call it for every file, in parallel, and the
  fragments are appended in item order. Hold nothing per item in memory.
- Volatile snapshots are never given to a view; everything else is (files, directories,
  symlinks, special files, errors, skipped files): read each field with `item.get`.
- A path is printable text in a view: pass it through `text_for_view` and escape it for the
  format. The exact path stays in items.jsonl.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

from manifest.views.base import FragmentView, ViewSpec, text_for_view

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.views.base import ViewContext


def _csv_field(value: Any) -> str:
    """RFC 4180: quoted, with quotes doubled; None is an empty field."""
    if value is None:
        return ""
    return '"' + text_for_view(str(value)).replace('"', '""') + '"'


class ExampleCsvView(FragmentView):
    """`example.csv`: path, kind, size and SHA-256 of every item, for a spreadsheet."""

    def __init__(self, ctx: ViewContext) -> None:
        self.ctx = ctx  # what the acquisition as a whole is (case, host, performer, ...)

    def begin(self, out: IO[bytes], scratch_dir: Path) -> None:
        """The header row. `scratch_dir` is on the output medium, for temporary files if needed."""
        out.write(b"case,path,kind,size,sha256\r\n")

    def fragment(self, item: dict[str, Any]) -> bytes:
        row = (self.ctx.case, item.get("source_path"), item.get("kind"), item.get("size"), item.get("sha256"))
        return (",".join(_csv_field(v) for v in row) + "\r\n").encode("utf-8")

    def plain(self, item: dict[str, Any]) -> bytes:
        """Optional: the same bytes as `fragment` for an item `plain_file` accepts (a regular
        file whose path needs no escaping), by one template; KeyError falls back to `fragment`."""
        path, size, sha256 = item["source_path"], item["size"], item["sha256"]
        return f'"{self.ctx.case}","{path}","file","{size}","{sha256}"\r\n'.encode()

    def end(self, out: IO[bytes]) -> None:
        """A CSV file has no footer."""


EXAMPLE = ViewSpec("example", "example.csv", ExampleCsvView)
