"""Resuming an interrupted collection (SPEC §1): `collect --resume BUNDLE.incomplete`."""

from __future__ import annotations

import fcntl
import json
import os
from typing import TYPE_CHECKING

import pytest

from agent.commands.collect import cli_sources
from collectors.collection import CollectionRequest, run_collection
from manifest.errors import CollectionInterrupted, UsageError
from manifest.signing.keys import KeyStore
from tests.support.builders import assert_write_once, collect, make_key, snapshot_times
from tests.support.env import clear_flags
from tests.support.resume import CASE, StopAfter, interrupted, make_tree

if TYPE_CHECKING:
    from pathlib import Path


def items(bundle: Path) -> list[dict]:
    return [json.loads(line) for line in (bundle / "metadata/items.jsonl").read_text().splitlines()]


@pytest.fixture
def setup(cli, tmp_path):
    make_key(cli)
    src = make_tree(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    yield cli, src, out
    clear_flags(out)


def test_resume_finishes_an_interrupted_collection(setup, tmp_path):
    cli, src, out = setup
    before = snapshot_times(src)
    bundle = interrupted(cli, src, out, after=300)
    kept = items(bundle)
    assert 300 <= len(kept) < 700
    # What a run killed mid-write can leave: a torn last line and a copy no item records.
    with (bundle / "metadata/items.jsonl").open("ab") as fh:
        fh.write(b'{"acquired_end":"2026-')
    stray = bundle / "data/files/stray-in-flight.log"
    stray.write_bytes(b"copied, never recorded\n")

    proc = cli("collect", "--case", CASE, "--out", out, "--resume", bundle, src)
    assert proc.returncode == 0, proc.stderr
    sealed = out / bundle.name.removesuffix(".incomplete")
    assert proc.stdout.strip() == str(sealed) and not bundle.exists()
    assert cli("verify", sealed).returncode == 0
    assert_write_once(sealed)  # directories made by the interrupted run are locked as well

    fresh_out = tmp_path / "fresh"
    fresh_out.mkdir()
    fresh = collect(cli, fresh_out, src, case=CASE)
    resumed_items, fresh_items = items(sealed), items(fresh)
    assert [i["id"] for i in resumed_items] == [f"{n:08d}" for n in range(1, len(resumed_items) + 1)]
    assert [i["source_path"] for i in resumed_items] == [i["source_path"] for i in fresh_items]
    assert [i["sha256"] for i in resumed_items] == [i["sha256"] for i in fresh_items]
    assert resumed_items[: len(kept)] == kept  # what was recorded before stays exactly as it was
    assert any("hard link: shares inode" in (i["note"] or "") for i in resumed_items)
    assert not (sealed / "data/files/stray-in-flight.log").exists()

    events = [json.loads(line) for line in (sealed / "custody/custody.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["collection-started", "note", "collection-completed", "sealed"]
    note = events[1]
    assert note["reason"] == "collection resumed after an interruption"
    assert note["details"]["items_kept"] == len(kept)
    assert note["details"]["torn_line_bytes_cut"] == len(b'{"acquired_end":"2026-')
    assert note["details"]["unrecorded_copies_removed"] >= 1
    log = (sealed / "metadata/acquisition-log.jsonl").read_text()
    assert '"collection-resumed"' in log and "stray-in-flight.log" in log
    link = os.fsencode(src / "dir05/link")  # readlink moves a symlink's own atime (no O_NOATIME)
    after = snapshot_times(src)
    assert after[link][1:] == before[link][1:]
    assert {k: v for k, v in after.items() if k != link} == {k: v for k, v in before.items() if k != link}


def one_line(proc, code: int, text: str) -> None:
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert text in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_resume_refuses_what_it_cannot_trust_and_changes_nothing(setup, tmp_path):
    cli, src, out = setup
    bundle = interrupted(cli, src, out, after=200)
    with (bundle / "metadata/items.jsonl").open("ab") as fh:
        fh.write(b'{"torn')
    recorded = next(i for i in items_lines(bundle) if i.get("stored_as"))
    copy = bundle / recorded["stored_as"]
    state = {p: p.read_bytes() for p in (bundle / "metadata").iterdir()}

    resume = ("collect", "--case", CASE, "--out", out, "--resume", bundle)
    one_line(cli(*resume, tmp_path), 2, "collected other sources")
    one_line(cli("collect", "--case", "C-OTHER", "--out", out, "--resume", bundle, src), 2, "belongs to case")
    other = type(cli)(tmp_path / "other-home")
    make_key(other, name="Bob Other")
    one_line(other(*resume, src), 2, "was started with key")
    fd = os.open(bundle, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a collection still running would hold it
        one_line(cli(*resume, src), 2, "being written by another sealbox process")
    finally:
        os.close(fd)
    clear_flags(copy)
    os.chmod(copy, 0o644)
    copy.write_bytes(b"X" + copy.read_bytes()[1:])
    one_line(cli(*resume, src), 1, "differs from its recorded sha256")
    assert {p: p.read_bytes() for p in (bundle / "metadata").iterdir()} == state  # nothing changed
    sealed = collect(cli, out, src, case=CASE)
    one_line(cli(*resume[:-1], sealed, src), 2, "not an interrupted bundle")


def items_lines(bundle: Path) -> list[dict]:
    out = []
    for line in (bundle / "metadata/items.jsonl").read_bytes().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            break
    return out


def test_respond_resumes_on_a_fixture_root(cli, tmp_path, monkeypatch):
    """`respond --resume`: the interrupted plan is finished; the items are exactly a fresh run's."""
    import collectors.acquire.plan
    from collectors.artifacts import Catalog
    from collectors.respond import build_request
    from tests.support.layouts import build_linux_root

    make_key(cli)
    root, expected = build_linux_root(tmp_path / "fixture")
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(collectors.acquire.plan, "BATCH_FILES", 4)  # small batches: stop part way
    prepared = build_request(
        Catalog.load(), case=CASE, out_dir=out, signer=KeyStore(cli.home).load_signer(None), root=root
    )
    with pytest.raises(CollectionInterrupted):
        run_collection(prepared.request, StopAfter(8))
    (bundle,) = out.glob("*.incomplete")
    assert 8 <= len(items(bundle)) < len(expected)
    args = ("respond", "--case", CASE, "--root", root, "--out", out, "--no-prompt", "--json")
    proc = cli(*args, "--resume", bundle)
    assert proc.returncode == 0, proc.stderr
    sealed = out / bundle.name.removesuffix(".incomplete")
    assert json.loads(proc.stdout)["bundle"] == str(sealed)
    assert {i["source_path"] for i in items(sealed) if i["kind"] != "volatile"} == set(expected)
    assert cli("verify", sealed).returncode == 0
    clear_flags(out)


def test_resume_refuses_a_copy_path_outside_data(setup):
    cli, src, out = setup
    bundle = interrupted(cli, src, out, after=50)
    last = items(bundle)[-1]
    planted = {**last, "id": f"{int(last['id']) + 1:08d}", "stored_as": "data/../../outside.log"}
    with (bundle / "metadata/items.jsonl").open("a") as fh:
        fh.write(json.dumps(planted, sort_keys=True, separators=(",", ":")) + "\n")
    one_line(cli("collect", "--case", CASE, "--out", out, "--resume", bundle, src), 1, "outside data/")


def test_resume_seals_a_run_interrupted_while_sealing(setup, tmp_path, monkeypatch):
    cli, src, out = setup
    from manifest.views import ViewSet

    finish_views = ViewSet.close

    def interrupt_after_views(self: ViewSet) -> None:  # collection-completed is in custody by now
        finish_views(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(ViewSet, "close", interrupt_after_views)
    bundle = interrupted(cli, src, out, after=10**9)
    monkeypatch.undo()
    kept = (bundle / "metadata/items.jsonl").read_bytes()
    (tmp_path / "src/appeared-later.log").write_text("not part of the finished collection\n")

    proc = cli("collect", "--case", CASE, "--out", out, "--resume", bundle, src)
    assert proc.returncode == 0, proc.stderr
    sealed = out / bundle.name.removesuffix(".incomplete")
    assert cli("verify", sealed).returncode == 0
    assert (sealed / "metadata/items.jsonl").read_bytes() == kept  # nothing collected again
    events = [json.loads(line) for line in (sealed / "custody/custody.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["collection-started", "collection-completed", "note", "sealed"]
    assert events[2]["reason"] == "sealing resumed after an interruption"
    assert events[2]["details"]["stage"] == "sealing"


def test_resume_after_an_interrupted_post_step_writes_its_output_again(setup):
    cli, src, out = setup
    signer = KeyStore(cli.home).load_signer(None)
    sources = cli_sources((str(src),), (), None, None)
    calls = []

    def index(writer, _items: Path) -> None:  # like respond's email index: a derived metadata file
        writer.write_metadata("index.json", b'{"partial": true}')
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt

    first = CollectionRequest(CASE, out, signer, sources, workers=2, post=[index])
    with pytest.raises(CollectionInterrupted):
        run_collection(first)
    (bundle,) = out.glob("*.incomplete")
    again = CollectionRequest(CASE, out, signer, sources, workers=2, post=[index], resume=bundle)
    sealed = run_collection(again).bundle
    assert (sealed / "metadata/index.json").read_bytes() == b'{"partial": true}'
    assert cli("verify", sealed).returncode == 0


def test_a_filesystem_without_locks_does_not_pass_for_a_busy_bundle(tmp_path, monkeypatch):
    # Some network shares refuse flock outright (ENOLCK): that is not another sealbox at work.
    import errno

    import manifest.bundle

    def refuse(_fd: int, _op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(manifest.bundle.fcntl, "flock", refuse)
    os.close(manifest.bundle.lock_bundle_dir(tmp_path))

    def held(_fd: int, _op: int) -> None:
        raise BlockingIOError(errno.EWOULDBLOCK, "Resource temporarily unavailable")

    monkeypatch.setattr(manifest.bundle.fcntl, "flock", held)
    with pytest.raises(UsageError, match="being written by another sealbox process"):
        manifest.bundle.lock_bundle_dir(tmp_path)
