"""metadata/ views as a library: they stream without holding items, and CASE ids are UUIDv5.
What real readers make of them (mactime, xmllint, case_validate) is tests/cli/test_view_readers.py."""

from __future__ import annotations

import json
import tracemalloc
from typing import TYPE_CHECKING

from manifest.views import write_views
from tests.support.views import CTX, DirWriter, item

if TYPE_CHECKING:
    from pathlib import Path


def test_views_stream_without_growing_memory(tmp_path: Path) -> None:
    """Peak Python memory while writing views for 4000 items stays far below the items' size."""
    items_path = tmp_path / "items.jsonl"
    with items_path.open("w") as fh:
        for n in range(1, 4001):
            fh.write(json.dumps(item(n), sort_keys=True) + "\n")
    tracemalloc.start()
    try:
        write_views(DirWriter(tmp_path / "bundle"), items_path, CTX)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert items_path.stat().st_size > 2_000_000
    assert peak < 500_000, f"peak {peak} bytes: a view holds items in memory"


def test_case_item_ids_are_the_rfc4122_uuid5_of_bundle_and_item() -> None:
    import uuid

    from manifest.views.case_jsonld import _NS, _item_uuid

    for bundle in ("6b1d7f3e-0c1e-4d7a-9a51-000000000001", "another bundle"):
        for item_id in [f"{n:08d}" for n in range(1, 300)] + [7, "x/y"]:
            assert _item_uuid(bundle, item_id) == str(uuid.uuid5(_NS, f"{bundle}/{item_id}"))
