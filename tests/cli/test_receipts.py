"""Custody receipts: every appended event leaves a signed witness in the actor's key store, and a
log whose tail was cut, emptied, deleted or rewritten no longer verifies against it."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest

from manifest.format.canonical import canonical_bytes
from manifest.signing.custody import (
    CONTINUATION,
    append_event_with_receipt,
    event_line,
    make_event,
    sha256_hex,
)
from manifest.signing.keys import KeyStore
from manifest.signing.receipts import SIGNING_PREFIX, check_custody_anchors, read_receipt_file
from manifest.verify import verify_bundle
from tests.support.builders import collect, make_key, writable_copy
from tests.support.env import Cli, clear_flags


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory):
    """A key store with Ann's key and one sealed bundle (never changed: tests copy it)."""
    base = tmp_path_factory.mktemp("receipts")
    cli = Cli(base / "home")
    make_key(cli)
    src = base / "src"
    src.mkdir()
    (src / "auth.log").write_text("Mar  2 10:00:01 sshd: Accepted password for bob\n")
    out = base / "out"
    out.mkdir()
    bundle = collect(cli, out, src)
    yield cli.home, bundle
    clear_flags(out)


@pytest.fixture
def world(sealed, tmp_path: Path):
    """A fresh copy of the store and of the bundle for one test: (store, signer, bundle)."""
    home, bundle = sealed
    shutil.copytree(home, tmp_path / "home", symlinks=True)
    store = KeyStore(tmp_path / "home")
    copy = writable_copy(bundle, tmp_path)
    return store, store.load_signer(None), copy


def add(store: KeyStore, bundle: Path, reason: str = "checked") -> Path:
    return append_event_with_receipt(bundle, store.load_signer(None), "note", {}, reason).receipt


def kinds(report) -> list[str]:
    return [f.kind for f in report.findings]


def anchor_note(report) -> str:
    return next(n for n in report.notes if n.startswith("custody after seal:"))


def test_each_append_keeps_a_signed_receipt_and_verify_reports_the_anchor(world) -> None:
    store, signer, bundle = world
    first = add(store, bundle, "hashes checked")
    second = add(store, bundle, "copied to the case share")
    lines = (bundle / CONTINUATION).read_bytes().splitlines()
    receipt = json.loads(second.read_bytes())
    assert second.parent == store.home / "receipts" / receipt["bundle"]
    assert receipt["seq"] == json.loads(lines[-1])["seq"] and receipt["line_sha256"] == sha256_hex(lines[-1])
    assert receipt["signer"]["key"] == signer.fingerprint and receipt["bundle_path"] == str(bundle.resolve())
    assert second.read_bytes() == canonical_bytes(receipt) + b"\n"
    sig = base64.b64decode(receipt.pop("sig"))
    signer.public.verify(sig, SIGNING_PREFIX + canonical_bytes(receipt))  # raises when wrong
    assert first != second
    report = verify_bundle(bundle, store=store)
    assert report.ok, report.findings
    assert anchor_note(report) == (
        f"custody after seal: 2 events, last anchored at seq {receipt['seq']} "
        f"by Ann Example ({signer.fingerprint})"
    )


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _drop_last(path: Path) -> None:
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))


def _delete(path: Path) -> None:
    path.unlink()


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _symlink(path: Path) -> None:
    outside = path.parent.parent.parent / "elsewhere.jsonl"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


@pytest.mark.parametrize("cut", [_drop_last, _empty, _delete, _directory, _symlink, _fifo])
def test_a_cut_or_replaced_tail_is_a_finding_when_a_receipt_exists(world, cut) -> None:
    store, _signer, bundle = world
    add(store, bundle, "first")
    add(store, bundle, "second")
    cut(bundle / CONTINUATION)
    report = verify_bundle(bundle, store=store)
    assert "custody-tail-truncated" in kinds(report), report.findings
    assert not report.ok
    if cut in (_directory, _symlink, _fifo):
        # Named by verify's file rules (a link, fifo or directory is never opened).
        assert {"not-regular-file", "tag-file-missing"} & set(kinds(report))


def test_without_a_receipt_a_cut_tail_cannot_be_seen_and_verify_says_not_anchored(world, tmp_path) -> None:
    store, _signer, bundle = world
    add(store, bundle, "first")
    add(store, bundle, "second")
    _drop_last(bundle / CONTINUATION)
    stranger = KeyStore(tmp_path / "stranger")  # trusts the signer, holds no receipt
    report = verify_bundle(bundle, {store.own_keys()[0].identity.fingerprint}, store=stranger)
    assert report.ok, report.findings
    assert anchor_note(report) == "custody after seal: 1 events, not anchored"


def test_a_receipt_given_on_the_command_line_catches_the_cut(world, tmp_path) -> None:
    store, signer, bundle = world
    add(store, bundle, "first")
    receipt = add(store, bundle, "second")
    _drop_last(bundle / CONTINUATION)
    stranger = Cli(tmp_path / "stranger")
    proc = stranger("verify", "--trust", signer.fingerprint, "--receipt", receipt, bundle)
    assert proc.returncode == 1, proc.stdout
    assert "FAIL custody-tail-truncated: custody/continuation.jsonl" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_a_rewritten_event_no_longer_matches_its_receipt(world) -> None:
    store, signer, bundle = world
    add(store, bundle, "the truth")
    path = bundle / CONTINUATION
    last = json.loads(path.read_bytes().splitlines()[-1])
    # Re-signed by the same key with the right link: the chain alone holds, only the receipt tells.
    forged = make_event(
        seq=last["seq"],
        event="note",
        case=last["case"],
        bundle=last["bundle"],
        signer=signer,
        details={},
        reason="a convenient story",
        prev=last["prev"],
    )
    path.write_bytes(event_line(forged))
    report = verify_bundle(bundle, store=store)
    assert kinds(report) == ["custody-receipt-mismatch"], report.findings
    assert report.findings[0].where == "custody/continuation.jsonl:1"


def test_another_copy_of_the_bundle_going_on_elsewhere_is_not_a_cut(world, tmp_path) -> None:
    store, _signer, bundle = world
    add(store, bundle, "before the hand-over")
    other = tmp_path / "other"
    other.mkdir()
    copy = writable_copy(bundle, other)
    add(store, copy, "the recipient's copy goes on")
    add(store, bundle, "the original goes on differently")
    for b in (bundle, copy):
        report = verify_bundle(b, store=store)
        assert report.ok, report.findings
        assert "last anchored at seq" in anchor_note(report)
    # Each copy's note names the other copy's receipt it does not hold, and how to hold it strictly.
    assert f"a receipt made for the copy at {copy.resolve()} names seq" in anchor_note(
        verify_bundle(bundle, store=store)
    )


def test_a_moved_and_cut_copy_is_not_judged_but_the_note_says_what_to_give(world, tmp_path) -> None:
    store, _signer, bundle = world
    add(store, bundle, "first")
    receipt = add(store, bundle, "second")
    moved = tmp_path / "moved"
    moved.mkdir()
    bundle = bundle.rename(moved / bundle.name)
    _drop_last(bundle / CONTINUATION)
    report = verify_bundle(bundle, store=store)
    assert report.ok  # another copy may legitimately hold fewer events
    assert f"verify with --receipt {receipt}" in anchor_note(report)
    strict = verify_bundle(bundle, store=store, receipts=(receipt,))
    assert kinds(strict) == ["custody-tail-truncated"]


def _forge(receipt: Path, tmp_path: Path, **changes) -> Path:
    body = json.loads(receipt.read_bytes())
    body.update(changes)
    forged = tmp_path / f"forged-{len(list(tmp_path.iterdir()))}.json"
    forged.write_bytes(canonical_bytes(body) + b"\n")
    return forged


def test_forged_receipts_are_findings(world, tmp_path) -> None:
    store, _signer, bundle = world
    receipt = add(store, bundle, "first")
    bundle_id = json.loads(receipt.read_bytes())["bundle"]
    stranger_home = tmp_path / "stranger"
    KeyStore(stranger_home).generate("Mallory", "nobody", "nowhere")
    mallory = KeyStore(stranger_home).load_signer(None)
    lines = verify_bundle(bundle, store=store)
    assert lines.ok
    from manifest.signing.custody import read_lines
    from manifest.signing.receipts import make_receipt

    chain = read_lines(bundle)
    trusted = {store.own_keys()[0].identity.fingerprint}
    by_mallory = tmp_path / "mallory.json"
    event = json.loads(chain[-1].raw) | {"seq": len(chain) + 5}
    by_mallory.write_bytes(canonical_bytes(make_receipt(mallory, event, b"x", bundle)) + b"\n")
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(b'{"type":"sealbox-custody-receipt","bundle":"\xe9"}')
    cases = {
        _forge(receipt, tmp_path, seq=len(chain) + 3): "receipt-invalid",  # seq changed, not re-signed
        _forge(receipt, tmp_path, seq="7"): "receipt-malformed",
        _forge(receipt, tmp_path, signer=["a"]): "receipt-malformed",
        by_mallory: "receipt-untrusted",
        deep: "receipt-malformed",
        latin1: "receipt-malformed",
    }
    for path, kind in cases.items():
        found, _summary = check_custody_anchors(bundle, bundle_id, chain, None, trusted, [path])
        assert [f.kind for f in found] == [kind], (path.read_bytes()[:80], found)
    wrong = _forge(receipt, tmp_path, bundle="another-bundle")
    assert read_receipt_file(wrong)[0] is not None
    found, _ = check_custody_anchors(bundle, bundle_id, chain, None, trusted, [wrong])
    assert [f.kind for f in found] == ["receipt-invalid"]  # a changed bundle id breaks the signature
    # Planted in the store itself: named as a finding, never a crash.
    (receipt.parent / "planted.json").write_bytes(b"\xff\xfe garbage")
    report = verify_bundle(bundle, store=store)
    assert kinds(report) == ["receipt-malformed"]
    assert "planted.json" in report.findings[0].where


def test_custody_add_prints_the_receipt_and_verify_prints_the_anchor(sealed, tmp_path) -> None:
    home, bundle = sealed
    shutil.copytree(home, tmp_path / "home", symlinks=True)
    cli = Cli(tmp_path / "home")
    copy = writable_copy(bundle, tmp_path)
    proc = cli("custody", "add", copy, "--event", "verified", "--reason", "hashes checked", check=True)
    receipt_line = proc.stdout.strip().splitlines()[-1]
    assert receipt_line.startswith("receipt: ")
    receipt = Path(receipt_line.removeprefix("receipt: "))
    assert receipt.is_file() and receipt.is_relative_to(tmp_path / "home" / "receipts")
    out = cli("verify", copy, check=True).stdout
    assert "custody after seal: 1 events, last anchored at seq" in out and "by Ann Example" in out
    data = json.loads(cli("verify", "--json", copy, check=True).stdout)
    assert any(n.startswith("custody after seal: 1 events, last anchored") for n in data["notes"])
    assert "custody after seal: 1 events, last anchored" in cli("custody", "show", copy, check=True).stdout
    _empty(copy / CONTINUATION)
    shown = cli("custody", "show", copy)
    assert shown.returncode == 1 and "FAIL custody-tail-truncated" in shown.stdout


def test_append_refuses_a_log_that_does_not_verify_or_is_not_a_regular_file(world) -> None:
    from manifest.errors import BundleError

    store, signer, bundle = world
    add(store, bundle, "first")
    path = bundle / CONTINUATION
    good = path.read_bytes()
    path.write_bytes(good.replace(b"\n", b"\r\n"))
    with pytest.raises(BundleError, match="does not hold"):
        append_event_with_receipt(bundle, signer, "note", {}, "more")
    assert path.read_bytes() == good.replace(b"\n", b"\r\n"), "nothing appended"
    path.unlink()
    path.mkdir()
    with pytest.raises(BundleError, match="not a regular file"):
        append_event_with_receipt(bundle, signer, "note", {}, "more")
    path.rmdir()
    os.mkfifo(path)
    with pytest.raises(BundleError, match="not a regular file"):
        append_event_with_receipt(bundle, signer, "note", {}, "more")


def test_export_carries_the_head_receipt_and_receive_keeps_and_checks_it(sealed, tmp_path) -> None:
    home, bundle = sealed
    shutil.copytree(home, tmp_path / "home", symlinks=True)
    cli = Cli(tmp_path / "home")
    copy = writable_copy(bundle, tmp_path)
    (tmp_path / "pkg").mkdir()
    proc = cli("export", copy, "--to", "Paula Police, City PD", "--out", tmp_path / "pkg")
    assert proc.returncode == 0, proc.stderr
    receipt = Path(next(x for x in proc.stderr.splitlines() if x.startswith("receipt: ")).split(" ", 1)[1])
    exported = json.loads(receipt.read_bytes())
    assert exported["event"] == "exported"
    package = Path(proc.stdout.strip().splitlines()[-1])
    import tarfile

    with tarfile.open(package) as tar:
        assert tar.extractfile("custody-receipt.json").read() == receipt.read_bytes()
    (tmp_path / "in").mkdir()
    got = json.loads(cli("receive", package, "--out", tmp_path / "in", "--json", check=True).stdout)
    kept = tmp_path / "in" / f"{copy.name}.custody-receipt.json"
    assert got["custody-receipt.json"] == str(kept) and kept.read_bytes() == receipt.read_bytes()
    received = Path(got["bundle"])
    assert json.loads(Path(got["receipt"]).read_bytes())["event"] == "received"
    # The exporter's receipt, given to verify, holds for the received copy; cut the copy and it fails.
    assert cli("verify", "--receipt", kept, received).returncode == 0
    clear_flags(tmp_path / "in")
    path = received / CONTINUATION
    path.chmod(0o644)
    received.joinpath("custody").chmod(0o755)
    path.write_bytes(b"")
    proc = cli("verify", "--receipt", kept, received)
    assert proc.returncode == 1 and "custody-tail-truncated" in proc.stdout
    clear_flags(tmp_path / "in")


def test_a_valid_receipt_for_another_bundle_is_named(world, tmp_path) -> None:
    from manifest.signing.custody import read_lines
    from manifest.signing.receipts import make_receipt

    store, signer, bundle = world
    add(store, bundle, "first")
    chain = read_lines(bundle)
    last = json.loads(chain[-1].raw)
    other = tmp_path / "other.json"
    other.write_bytes(
        canonical_bytes(make_receipt(signer, last | {"bundle": "another-bundle"}, chain[-1].raw, bundle))
        + b"\n"
    )
    found, summary = check_custody_anchors(bundle, last["bundle"], chain, None, {signer.fingerprint}, [other])
    assert [f.kind for f in found] == ["receipt-wrong-bundle"] and summary.endswith("not anchored")
