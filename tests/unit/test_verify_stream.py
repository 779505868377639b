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
from hypothesis import given, settings
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


@settings(max_examples=300, deadline=None, database=None)
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
