"""One constructor for the bundle writer: a fresh bundle and one resumed at either stage are
built by the same code from a `WriterState`, so they have the same attributes and identity."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest

from manifest.bundle import BundleWriter, Stage, WriterState
from manifest.errors import BundleError, UsageError
from manifest.resume import resume
from manifest.signing.keys import KeyStore
from manifest.verify import verify_bundle

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.signing.keys import Signer

PREVIOUS = "ab" * 32  # the tagmanifest digest of a bundle this one follows up
# started_ns is not among them: a resumed bundle's start is its `collection-started` event's time,
# a moment after the fresh writer claimed its name (no custody line records the claim).
IDENTITY = ("case", "bundle_id", "host", "name", "organization", "contact", "previous", "immutable")


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    store = KeyStore(tmp_path / "home")
    store.generate("Ann Example", "IT responder", "City IT")
    return store.load_signer(None)


def started(writer: BundleWriter) -> None:
    """What a collection records first (collectors/collection.py), then one volatile item."""
    writer.custody.add(
        "collection-started",
        {
            "sources": ["/evidence"],
            "host": writer.host,
            "previous": {"bundle": "B", "tagmanifest_sha256": PREVIOUS},
        },
    )
    writer.add_volatile("processes", {"pid": 1})


def test_fresh_and_resumed_writers_are_built_alike(tmp_path: Path, signer: Signer, monkeypatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    fresh = BundleWriter(
        WriterState.fresh(
            out, case="C-WRITER", signer=signer, host="clerk-pc", immutable=False, previous=PREVIOUS
        )
    )
    started(fresh)
    fresh.abort("interrupted by the test")

    collecting = resume(fresh.path, signer, immutable=False, previous=PREVIOUS).writer
    assert collecting is not None and collecting.state.stage is Stage.COLLECTING
    assert vars(collecting).keys() == vars(fresh).keys()
    for name in IDENTITY:
        assert getattr(collecting, name) == getattr(fresh, name), name
    assert 0 <= collecting.started_ns - fresh.started_ns < 60 * 10**9
    assert dataclasses.replace(collecting.view_context, started="") == dataclasses.replace(
        fresh.view_context, started=""
    )
    assert (collecting.payload_files, collecting.next_id()) == (1, 2), "ids go on after the kept items"

    # Interrupted again, this time right after its `sealed` event: only the seal's files are left.
    collecting.finish_items()
    collecting.custody.add("collection-completed", {"items": 1})

    def cut_power(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(BundleWriter, "_write_seal", cut_power)
    with pytest.raises(KeyboardInterrupt):
        collecting.seal({"items": 1})
    collecting.abort("interrupted by the test")
    monkeypatch.undo()

    point = resume(fresh.path, signer, immutable=False, previous=PREVIOUS)
    sealing = point.writer
    assert sealing is not None and sealing.state.stage is Stage.SEALED and point.sealed is not None
    assert vars(sealing).keys() == vars(fresh).keys()
    for name in IDENTITY:
        assert getattr(sealing, name) == getattr(fresh, name), name
    with pytest.raises(BundleError, match="sealed event"):
        sealing.custody.add("note", {})
    bundle = sealing.finish_seal(str(point.sealed["payload_oxum"]), str(point.sealed["manifest_sha256"]))
    assert bundle == out / fresh.name
    assert f"Sealbox-Previous-Bundle: {PREVIOUS}" in (bundle / "bag-info.txt").read_text()
    report = verify_bundle(bundle, {signer.fingerprint})
    assert report.ok, report.findings


def test_a_writer_fills_every_field_of_the_view_context(tmp_path: Path, signer: Signer) -> None:
    """A renamed writer attribute must fail here, not blank a field of the CASE or DFXML view."""
    writer = BundleWriter(WriterState.fresh(tmp_path, case="C-CTX", signer=signer, immutable=False))
    ctx = writer.view_context
    blank = [f.name for f in dataclasses.fields(ctx) if f.name != "ended" and not getattr(ctx, f.name)]
    assert blank == []
    assert (ctx.case, ctx.bundle_id, ctx.host) == (writer.case, writer.bundle_id, writer.host)
    assert ctx.performer == signer.identity and ctx.ended is None
    writer.abort("test")


def test_a_resume_is_refused_when_the_sealed_bundle_exists(tmp_path: Path, signer: Signer) -> None:
    writer = BundleWriter(WriterState.fresh(tmp_path, case="C-TWICE", signer=signer, immutable=False))
    started(writer)
    writer.abort("interrupted by the test")
    (tmp_path / writer.name).mkdir()
    before = (writer.path / "metadata/items.jsonl").read_bytes()
    with pytest.raises(UsageError, match="already exists"):
        resume(writer.path, signer, immutable=False, previous=PREVIOUS)
    assert (writer.path / "metadata/items.jsonl").read_bytes() == before, "refused before any change"
