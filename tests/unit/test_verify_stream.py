"""The streamed payload check: the main process only cuts the manifest and items.jsonl into
chunks; the workers prove each chunk's lines agree, and anything else gives up (the exact check
then runs), never a wrong answer."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from manifest.verify import stream
from manifest.verify.stream import Chunk, GiveUp, _check_chunk, _chunks

if TYPE_CHECKING:
    from pathlib import Path


@dataclass
class FakeBundle:
    path: Path


def _item(n: int, stored: str | None, sha: str | None, size: int | None) -> dict[str, object]:
    return {
        "id": f"{n:08d}",
        "kind": "file" if stored else "directory",
        "sha256": sha,
        "size": size,
        "status": "ok",
        "stored_as": stored,
    }


def _bundle(root: Path, files: int, dirs_every: int = 7) -> tuple[FakeBundle, list[dict[str, object]]]:
    """A bundle's payload files, manifest and items.jsonl as sealbox writes them (compact JSON,
    sorted keys), with an item without a stored copy (a directory) every `dirs_every` items."""
    (root / "metadata").mkdir(parents=True)
    items: list[dict[str, object]] = []
    manifest = []
    for i in range(files):
        if i % dirs_every == 0:
            items.append(_item(len(items) + 1, None, None, 4096))
        rel = f"data/files/d{i % 3}/f{i:04d}.txt"
        body = f"file {i}\n".encode() * (i % 5 + 1)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
        sha = hashlib.sha256(body).hexdigest()
        items.append(_item(len(items) + 1, rel, sha, len(body)))
        manifest.append(f"{sha}  {rel}\n")
    _write(root, items, manifest)
    return FakeBundle(root), items


def _write(root: Path, items: list[dict[str, object]], manifest: list[str]) -> None:
    lines = [json.dumps(it, sort_keys=True, separators=(",", ":")) + "\n" for it in items]
    (root / "metadata/items.jsonl").write_text("".join(lines))
    (root / "manifest-sha256.txt").write_text("".join(manifest))


def _run(bundle: FakeBundle, size: int) -> tuple[list[Chunk], int, int]:
    chunks = list(_chunks(bundle.path, str(bundle.path) + "/", size))
    checks = [_check_chunk(c) for c in chunks]
    ids = [c.first_id for c in checks] + [checks[-1].last_id]
    assert ids == sorted(ids)
    return chunks, sum(c.items for c in checks), sum(c.files for c in checks)


@pytest.mark.parametrize("block", [97, 4 << 20])
@pytest.mark.parametrize("size", [1, 5, 16, 512])
def test_the_files_are_cut_into_chunks_that_each_check_out(
    tmp_path: Path, size: int, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "_BLOCK", block)  # cut a few lines at a time, or all at once
    bundle, items = _bundle(tmp_path, 40)
    chunks, item_count, files = _run(bundle, size)
    assert item_count == len(items) and files == 40
    # Cut by bytes at line ends: about `size` payload files a chunk.
    per_chunk = [c.read()[0].count(b"\n") for c in chunks]
    assert max(per_chunk) <= 2 * size and len(chunks) >= 40 // (2 * size)
    # Every byte of both files is in exactly one chunk, in order.
    read = [c.read() for c in chunks]
    assert b"".join(items for _m, items in read) == (tmp_path / "metadata/items.jsonl").read_bytes()
    assert b"".join(manifest for manifest, _i in read) == (tmp_path / "manifest-sha256.txt").read_bytes()


def test_a_changed_file_is_a_problem_of_its_chunk(tmp_path: Path) -> None:
    bundle, _items = _bundle(tmp_path, 20)
    (tmp_path / "data/files/d1/f0007.txt").write_bytes(b"FILE 7\n" * 3)  # same size, other bytes
    chunks = list(_chunks(bundle.path, str(tmp_path) + "/", 4))
    problems = [p for c in chunks for p in _check_chunk(c).problems]
    assert [(p.kind, p.rel) for p in problems] == [("changed", "data/files/d1/f0007.txt")]


def _gives_up(bundle: FakeBundle, size: int = 4) -> bool:
    try:
        _run(bundle, size)
    except GiveUp:
        return True
    return False


def test_items_out_of_step_with_the_manifest_give_up(tmp_path: Path) -> None:
    bundle, items = _bundle(tmp_path, 12)
    manifest = (tmp_path / "manifest-sha256.txt").read_text().splitlines(keepends=True)
    manifest[5], manifest[6] = manifest[6], manifest[5]
    _write(tmp_path, items, manifest)
    assert _gives_up(bundle)


@pytest.mark.parametrize(
    "spoil",
    [
        "extra manifest line",
        "missing manifest line",
        "not json",
        "ids out of order",
        "json with spaces",
        "bad size",
        "bad kind",
        "bad digest of an item without a copy",
        "a line too long",
        "empty line",
    ],
)
def test_anything_the_exact_check_would_report_gives_up(tmp_path: Path, spoil: str) -> None:
    bundle, items = _bundle(tmp_path, 12)
    manifest = (tmp_path / "manifest-sha256.txt").read_text().splitlines(keepends=True)
    if spoil == "extra manifest line":
        manifest.append("0" * 64 + "  data/files/extra.txt\n")
    elif spoil == "missing manifest line":
        manifest.pop()
    elif spoil == "ids out of order":
        items[3]["id"], items[9]["id"] = items[9]["id"], items[3]["id"]
    elif spoil == "bad size":
        items[0]["size"] = True
    elif spoil == "bad kind":
        items[4]["kind"] = "teapot"
    elif spoil == "bad digest of an item without a copy":
        items[0]["sha256"] = "XYZ"
    elif spoil == "a line too long":
        items[2]["note"] = "x" * (70 << 10)
    _write(tmp_path, items, manifest)
    path = tmp_path / "metadata/items.jsonl"
    if spoil == "not json":
        path.write_bytes(path.read_bytes().replace(b"}\n", b"\n", 1))
    elif spoil == "json with spaces":  # valid JSON, but not as sealbox writes it: not proven
        path.write_bytes(path.read_bytes().replace(b'"stored_as":"', b'"stored_as": "'))
    elif spoil == "empty line":
        path.write_bytes(path.read_bytes().replace(b"\n", b"\n\n", 1))
    assert _gives_up(bundle)


def test_ids_out_of_order_across_chunks_are_seen(tmp_path: Path) -> None:
    # Each chunk is in order by itself; only the first and last ids of each tell.
    bundle, items = _bundle(tmp_path, 12)
    manifest = (tmp_path / "manifest-sha256.txt").read_text().splitlines(keepends=True)
    items[0]["id"] = "99999999"  # a directory item first, then the rest of its chunk
    items[1]["id"] = "99999999z"
    _write(tmp_path, items, manifest)
    chunks = list(_chunks(bundle.path, str(tmp_path) + "/", 1))
    checks = [_check_chunk(c) for c in chunks]
    assert checks[1].first_id <= checks[0].last_id


@settings(max_examples=150, deadline=None, database=None)
@given(
    lengths=st.lists(st.integers(0, 300), max_size=60),
    final_newline=st.booleans(),
    block=st.integers(1, 700),
    steps=st.lists(st.tuples(st.booleans(), st.integers(1, 900)), max_size=40),
)
def test_the_cursor_cuts_where_a_line_by_line_reader_would(
    lengths: list[int], final_newline: bool, block: int, steps: list[tuple[bool, int]]
) -> None:
    # The main process cuts by counting in C from guesses, a block at a time: wherever the
    # blocks end, it must cut exactly where reading line by line would.
    data = b"\n".join(b"x" * n for n in lengths) + (b"\n" if final_newline and lengths else b"")
    ends = [i + 1 for i, byte in enumerate(data) if byte == 0x0A]
    if data and not data.endswith(b"\n"):
        ends.append(len(data))
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(stream, "_BLOCK", block)
        path = os.path.join(tmp, "lines")
        with open(path, "wb") as fh:
            fh.write(data)
        fd = os.open(path, os.O_RDONLY)
        try:
            cursor = stream._Cursor(fd)
            done = 0  # lines cut so far
            for by_lines, n in steps:
                at = ends[done - 1] if done else 0
                if by_lines:
                    if done + n > len(ends):
                        with pytest.raises(GiveUp):
                            cursor.lines(n)
                        return
                    cursor.lines(n)
                    done += n
                    assert cursor.offset == ends[done - 1]
                else:
                    if cursor.ended():
                        assert at == len(data)
                        return
                    newline = data.find(b"\n", at + n - 1) if at + n < len(data) else -1
                    expected = len(data) if newline < 0 else newline + 1
                    assert cursor.piece(n) == (at, expected)
                    done = ends.index(expected) + 1
        finally:
            os.close(fd)


# -- the attacker's view: whatever the lines hold, the streamed parse answers only where the exact
# check (manifest.verify.index: parse_item, bad_fields, the id order, the pairing) reports nothing.

_DIGESTS = [hashlib.sha256(bytes([n])).hexdigest() for n in range(4)]
_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.sampled_from(["\ud800", "file", "ok", "data/a", "", *_DIGESTS]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
_FIELD_VALUES = {
    "id": st.one_of(st.sampled_from(["1", "2", "3", "10", "", "\ud800x"]), _ANY),
    "kind": st.one_of(st.sampled_from(["file", "directory", "teapot"]), _ANY),
    "status": st.one_of(st.sampled_from(["ok", "error", "fine"]), _ANY),
    "stored_as": st.one_of(st.sampled_from(["data/a", "data/b", "data/a"]), _ANY),
    "sha256": st.one_of(st.sampled_from(_DIGESTS), _ANY),
    "size": st.one_of(st.integers(0, 5), _ANY),
    "note": _ANY,
}


@st.composite
def _line(draw: st.DrawFn, position: int) -> bytes:
    keys = draw(st.lists(st.sampled_from(sorted(_FIELD_VALUES)), unique=True, max_size=7))
    item = {key: draw(_FIELD_VALUES[key]) for key in keys}
    if draw(st.integers(0, 9)) < 7:  # mostly as sealbox writes them, with a field or two odd
        stored = draw(st.sampled_from([None, "data/a", "data/b", f"data/{position}"]))
        valid = {
            "id": f"{position:04d}",
            "kind": "file" if stored else "directory",
            "status": "ok",
            "stored_as": stored,
            "sha256": draw(st.sampled_from(_DIGESTS)) if stored else None,
            "size": draw(st.integers(0, 5)),
        }
        item = {**valid, **dict(list(item.items())[: draw(st.integers(0, 1))])}
    text = json.dumps(
        item, sort_keys=draw(st.booleans()), separators=draw(st.sampled_from([(",", ":"), (", ", ": ")]))
    )
    raw = text.encode("utf-8", "surrogatepass")
    spoil = draw(st.sampled_from(["none"] * 6 + ["cut", "dup-key", "not-object", "bytes"]))
    if spoil == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif spoil == "dup-key" and raw.startswith(b"{") and len(raw) > 2:
        raw = b'{"id":"0",' + raw[1:]  # a repeated key (the last one counts)
    elif spoil == "not-object":
        raw = draw(st.sampled_from([b"[]", b"1", b'"x"', b"null"]))
    elif spoil == "bytes":
        raw += draw(st.sampled_from([b"\xff", b"\r", b" ", b"\x00"]))
    return raw


def _exact_reports(lines: list[bytes], pairs: list[tuple[str, str]]) -> bool:
    """Whether the exact check would report anything about these items and manifest lines (the
    lines themselves are the manifest's: parse_chunk answers only for well-formed ones)."""
    from manifest.format.items import parse_item
    from manifest.verify.index import bad_fields, is_unicode

    last, stored = "", []
    for raw in lines:
        try:
            item = parse_item(raw)
        except ValueError:
            return True  # items-unreadable
        if not isinstance(item, dict):
            return True
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id or not is_unicode(item_id) or item_id <= last:
            return True  # item-field-invalid, items-order
        last = item_id
        if bad_fields(item):
            return True
        if item.get("stored_as"):
            stored.append((item.get("sha256"), item["stored_as"]))
    return stored != pairs  # item-disagrees, item-missing, item-stored-twice


@settings(max_examples=150, deadline=None, database=None)
@given(
    lines=st.integers(0, 6).flatmap(lambda n: st.tuples(*(_line(i) for i in range(n))).map(list)),
    pairs=st.lists(st.tuples(st.sampled_from(_DIGESTS), st.sampled_from(["data/a", "data/1"])), max_size=3),
    from_items=st.booleans(),
)
def test_the_streamed_parse_answers_only_where_the_exact_check_reports_nothing(
    lines: list[bytes], pairs: list[tuple[str, str]], from_items: bool
) -> None:
    if from_items:  # the manifest lines the items call for (most often not what `pairs` drew)
        pairs = []
        for raw in lines:
            try:
                item = json.loads(raw)
            except ValueError:
                continue
            if isinstance(item, dict) and isinstance(item.get("stored_as"), str) and item["stored_as"]:
                pairs.append((str(item.get("sha256")), item["stored_as"]))
    block = b"".join(raw + b"\n" for raw in lines)
    manifest = "".join(f"{digest}  {rel}\n" for digest, rel in pairs).encode("utf-8", "surrogatepass")
    try:
        parsed = stream.parse_chunk(manifest, block)
    except GiveUp:
        event("gave up")
        return  # the exact check runs: always allowed
    event(f"answered, {len(pairs)} stored")
    assert not _exact_reports(lines, pairs)
    assert [(rel, digest) for rel, digest, _size, _most in parsed.expected] == [(r, d) for d, r in pairs]
    assert parsed.items == len(lines)
