"""verify is bounded and total: sizes are checked before anything is read, nesting and wrong types
are findings, links and special files are never followed or opened, and every run ends with one
verdict (exit 0 or 1), never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import socket
from typing import TYPE_CHECKING

import pytest

from manifest.signing.custody import append_event
from manifest.signing.keys import KeyStore
from tests.support.builders import sealed_bundle, writable_copy

if TYPE_CHECKING:
    from pathlib import Path

LIMIT = 60  # seconds: a verify that reads a 200 GB file would take many minutes


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    files = {"auth.log": "Nov 24 sshd: Accepted password for root\n" * 50, "notes.txt": "a note\n"}
    note = ("--event", "note", "--reason", "seen")
    with sealed_bundle(tmp_path_factory.mktemp("bounded"), files, (note,)) as pair:
        yield pair


@pytest.fixture
def copy(original, tmp_path):
    cli, bundle = original
    return cli, writable_copy(bundle, tmp_path)


def verdict(cli, bundle: Path, *extra: str) -> dict:
    proc = cli("verify", "--json", *extra, bundle, timeout=LIMIT)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert report["verified"] == (proc.returncode == 0)
    return report


def kinds(report: dict) -> set[tuple[str, str]]:
    return {(f["kind"], f["where"]) for f in report["findings"]}


def payload(bundle: Path, name: str) -> tuple[Path, str]:
    path = next((bundle / "data/files").rglob(name))
    return path, path.relative_to(bundle).as_posix()


def test_genuine_bundle_verifies_and_says_what_it_cannot_decide(copy):
    cli, bundle = copy
    report = verdict(cli, bundle)
    assert report["verified"], report["findings"]
    assert any(note.startswith("custody after seal: 1 event") for note in report["notes"])
    text = cli("verify", bundle).stdout
    assert "note: custody after seal: 1 event" in text
    assert "VERIFIED" in text


def test_payload_grown_sparse_to_200_gb_is_a_finding_at_once(copy):
    cli, bundle = copy
    path, rel = payload(bundle, "auth.log")
    os.truncate(path, 200 << 30)
    found = kinds(verdict(cli, bundle))
    assert ("payload-size-mismatch", rel) in found
    assert ("payload-oxum", "bag-info.txt") in found


def test_tag_files_grown_sparse_are_not_read_and_the_cap_is_named(copy):
    cli, bundle = copy
    for rel, size in (
        ("metadata/bodyfile.txt", 20 << 30),
        ("manifest-sha256.txt", 200 << 30),
        ("custody/continuation.jsonl", 20 << 30),
        ("tagmanifest-sha256.txt.sig", 2 << 20),
    ):
        os.truncate(bundle / rel, size)
    report = verdict(cli, bundle)
    too_large = {f["where"]: f["message"] for f in report["findings"] if f["kind"] == "tag-file-too-large"}
    assert set(too_large) == {
        "metadata/bodyfile.txt",
        "manifest-sha256.txt",
        "custody/continuation.jsonl",
        "tagmanifest-sha256.txt.sig",
    }
    assert "cap of 1048576 bytes (1 MiB)" in too_large["tagmanifest-sha256.txt.sig"]
    assert "256 MiB + 64 KiB x 2 payload files" in too_large["manifest-sha256.txt"]


def test_deeply_nested_json_is_a_finding_not_a_crash(copy):
    cli, bundle = copy
    deep = b"[" * 200_000 + b"]" * 200_000 + b"\n"
    with open(bundle / "metadata/items.jsonl", "ab") as f:
        f.write(deep)
    with open(bundle / "custody/continuation.jsonl", "ab") as f:
        f.write(b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"\n")
    found = {kind for kind, _where in kinds(verdict(cli, bundle))}
    assert "items-unreadable" in found
    assert "custody-unreadable" in found


def test_wrong_types_in_items_and_custody_are_findings(copy):
    cli, bundle = copy
    with open(bundle / "metadata/items.jsonl", "ab") as f:
        f.write(b'{"id":5,"stored_as":7}\n')
        f.write(b'{"id":"999999999999","stored_as":["x"],"size":true,"sha256":12,"kind":"door"}\n')
        f.write(b'{"id":"999999999999a","stored_as":"\\ud800"}\n')
        f.write(b"[1,2]\n\n")
    with open(bundle / "custody/continuation.jsonl", "ab") as f:
        f.write(b'{"seq":"3","actor":"me","details":[],"event":7,"prev":1,"sig":5,"bundle":[]}\n')
        f.write(b'{"seq":4,"actor":{"key":["x"],"public_key":3},"event":"sealed","details":"x"}\n')
    report = verdict(cli, bundle)
    found = {kind for kind, _where in kinds(report)}
    # A custody line of wrong types is no event at all (custody-field-invalid), never a crash.
    assert {"item-field-invalid", "items-unreadable", "custody-field-invalid"} <= found


def test_links_and_special_files_anywhere_are_findings_never_followed(copy, tmp_path, monkeypatch):
    cli, bundle = copy
    outside = tmp_path / "outside"
    outside.mkdir()
    for rel in ("keys/signer.pub.pem", "tagmanifest-sha256.txt.sig", "bag-info.txt"):
        shutil.copyfile(bundle / rel, outside / rel.replace("/", "_"))
        (bundle / rel).unlink()
        (bundle / rel).symlink_to(outside / rel.replace("/", "_"))
    (bundle / "custody/continuation.jsonl").unlink()
    os.mkfifo(bundle / "custody/continuation.jsonl")
    sock = socket.socket(socket.AF_UNIX)
    monkeypatch.chdir(bundle / "metadata")  # a socket's path must be short
    sock.bind("listening.sock")
    try:
        report = verdict(cli, bundle)
    finally:
        sock.close()
    found = kinds(report)
    for rel, what in (
        ("keys/signer.pub.pem", "symlink"),
        ("tagmanifest-sha256.txt.sig", "symlink"),
        ("bag-info.txt", "symlink"),
        ("custody/continuation.jsonl", "fifo"),
        ("metadata/listening.sock", "socket"),
    ):
        assert ("not-regular-file", rel) in found, (rel, what)
    assert ("signer-key-missing", "keys/signer.pub.pem") in found
    assert report["signer"] is None  # the key behind the link was never read


def test_continuation_deleted_or_made_a_directory(copy):
    cli, bundle = copy
    (bundle / "custody/continuation.jsonl").unlink()
    assert ("tag-file-missing", "custody/continuation.jsonl") in kinds(verdict(cli, bundle))
    (bundle / "custody/continuation.jsonl").mkdir()
    assert ("tag-file-missing", "custody/continuation.jsonl") in kinds(verdict(cli, bundle))


def test_received_event_forged_by_an_untrusted_key_is_a_finding(copy, tmp_path):
    cli, bundle = copy
    store = KeyStore(tmp_path / "mallory")
    store.generate("Mallory", "courier", "Nowhere")
    mallory = store.load_signer(None)
    append_event(bundle, mallory, "received", {"from": "the courier"})
    report = verdict(cli, bundle)
    assert ("custody-event-untrusted", "custody/continuation.jsonl:2") in kinds(report)
    assert report["findings"][0]["found"] == mallory.fingerprint
    assert verdict(cli, bundle, "--trust", mallory.fingerprint)["verified"]


def test_payload_dir_replaced_by_a_link_is_not_followed(copy, tmp_path):
    cli, bundle = copy
    path, rel = payload(bundle, "auth.log")
    shutil.copytree(path.parent, tmp_path / "elsewhere")
    shutil.rmtree(path.parent)
    path.parent.symlink_to(tmp_path / "elsewhere")
    found = kinds(verdict(cli, bundle))
    assert ("payload-missing", rel) in found
    assert ("payload-unlisted", path.parent.relative_to(bundle).as_posix()) in found
