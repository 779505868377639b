"""items.FIELDS names every field an item line can have: a real collection writes no other."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from collectors.acquire import Source, acquire
from manifest.bundle import BundleWriter, WriterState
from manifest.format.items import ALWAYS, FIELDS, WHEN_NEEDED, iter_items
from manifest.signing.keys import KeyStore
from tests.support.builders import build_awkward_tree

if TYPE_CHECKING:
    from pathlib import Path


def test_every_key_a_collection_writes_is_in_fields(tmp_path: Path) -> None:
    src = build_awkward_tree(tmp_path, big_mib=1)  # a name and a directory that are not UTF-8
    os.symlink(b"caf\xe9-target", os.fsencode(src) + b"/latin1-link")  # link text that is not UTF-8
    store = KeyStore(tmp_path / "home")
    store.generate("Ann Example", "IT responder", "City IT")
    out = tmp_path / "out"
    out.mkdir()
    writer = BundleWriter(
        WriterState.fresh(out, case="C-FIELDS", signer=store.load_signer(None), immutable=False)
    )
    writer.add_volatile("system", {"kernel": "test"})
    acquire(writer, [Source(os.fsencode(src), os.fsencode(src), "files/cli")], workers=1)
    bundle = writer.seal({})

    seen: set[str] = set()
    # Written unsorted where the worker knows the keys are in order: the bytes must still be the
    # sorted, compact form (FORMAT.md §3), line for line.
    for line in (bundle / "metadata/items.jsonl").read_bytes().splitlines():
        record = json.loads(line)
        assert line == json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    for item in iter_items(bundle / "metadata/items.jsonl"):
        assert set(ALWAYS) <= item.keys(), item["id"]
        assert item.keys() <= set(FIELDS), (item["id"], sorted(item.keys() - set(FIELDS)))
        seen.update(item.keys())
    assert set(WHEN_NEEDED) <= seen, "the tree has a path and a link text that are not UTF-8"
    assert sorted(FIELDS) == list(FIELDS) and len(set(FIELDS)) == len(FIELDS)
