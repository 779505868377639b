"""Tamper matrix: each manipulation of a sealed bundle gives exit 1 and the finding naming it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import TYPE_CHECKING

import pytest

from manifest.signing.keys import KeyStore
from tests.support.builders import sealed_bundle, writable_copy

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    files = {
        "logs/auth.log": "Nov 24 sshd: Accepted password for root\n" * 50,
        "logs/syslog": "kernel: something\n" * 20,
        "mail.mbox": "From a@b Tue Nov 24 00:00:00 2026\nSubject: x\n\nbody\n",
    }
    with sealed_bundle(tmp_path_factory.mktemp("tamper"), files) as pair:
        yield pair


@pytest.fixture
def copy(original, tmp_path):
    cli, bundle = original
    return cli, writable_copy(bundle, tmp_path)


def findings(cli, bundle: Path, *extra: str) -> list[dict]:
    proc = cli("verify", "--json", *extra, bundle)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)["findings"]


def kinds(found: list[dict]) -> set[tuple[str, str]]:
    return {(f["kind"], f["where"]) for f in found}


def payload(bundle: Path, name: str) -> tuple[Path, str]:
    path = next(p for p in (bundle / "data/files").rglob(name))
    return path, path.relative_to(bundle).as_posix()


def rehash_tagmanifest(bundle: Path) -> None:
    lines = []
    for line in (bundle / "tagmanifest-sha256.txt").read_text().splitlines():
        _digest, rel = line.split("  ", 1)
        lines.append(f"{hashlib.sha256((bundle / rel).read_bytes()).hexdigest()}  {rel}\n")
    (bundle / "tagmanifest-sha256.txt").write_text("".join(lines))


def test_untampered_copy_verifies(copy):
    cli, bundle = copy
    assert cli("verify", bundle).returncode == 0


def test_flipped_payload_byte(copy):
    cli, bundle = copy
    path, rel = payload(bundle, "auth.log")
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    found = findings(cli, bundle)
    assert kinds(found) == {("payload-changed", rel)}
    assert found[0]["expected"] != found[0]["found"]


def test_truncated_payload(copy):
    cli, bundle = copy
    path, rel = payload(bundle, "syslog")
    os.truncate(path, 5)
    assert {("payload-size-mismatch", rel), ("payload-oxum", "bag-info.txt")} == kinds(findings(cli, bundle))


def test_extra_file_in_data(copy):
    cli, bundle = copy
    (bundle / "data/files/planted.txt").write_text("I was not collected\n")
    found = kinds(findings(cli, bundle))
    assert ("payload-unlisted", "data/files/planted.txt") in found


def test_payload_removed(copy):
    cli, bundle = copy
    path, rel = payload(bundle, "mail.mbox")
    path.unlink()
    found = kinds(findings(cli, bundle))
    assert ("payload-missing", rel) in found


def test_payload_swapped_for_a_symlink_or_a_directory(copy):
    """A listed payload file replaced by a symlink (never followed) or a directory."""
    cli, bundle = copy
    path, rel = payload(bundle, "syslog")
    path.unlink()
    path.symlink_to("/etc/passwd")
    other, other_rel = payload(bundle, "mail.mbox")
    other.unlink()
    other.mkdir()
    (other / "inside.txt").write_text("planted\n")
    found = findings(cli, bundle)
    assert {
        ("payload-unreadable", rel),
        ("payload-missing", other_rel),
        ("payload-unlisted", other_rel + "/inside.txt"),
        ("payload-oxum", "bag-info.txt"),
    } <= kinds(found)
    assert next(f for f in found if f["kind"] == "payload-unreadable")["message"] == "a symlink, not a file"


def test_fifos_planted_in_the_bundle_do_not_hang_verify(copy):
    """A fifo where a payload or tag file was: opening it must not wait for a writer."""
    cli, bundle = copy
    path, rel = payload(bundle, "syslog")
    path.unlink()
    os.mkfifo(path)
    (bundle / "metadata/bodyfile.txt").unlink()
    os.mkfifo(bundle / "metadata/bodyfile.txt")
    proc = cli("verify", "--json", bundle, timeout=60)
    assert proc.returncode == 1, proc.stderr
    found = json.loads(proc.stdout)["findings"]
    assert {("payload-unreadable", rel), ("tag-file-missing", "metadata/bodyfile.txt")} <= kinds(found)
    assert next(f for f in found if f["kind"] == "payload-unreadable")["message"] == "not a regular file"


def test_one_worker_and_many_find_the_same(copy):
    """In-process checking (one worker) and the worker pool give the same findings, in order."""
    from manifest.verify import verify_bundle

    cli, bundle = copy
    path, _rel = payload(bundle, "auth.log")
    path.write_bytes(b"X" + path.read_bytes()[1:])
    (bundle / "data/files/planted.txt").write_text("planted\n")
    store = KeyStore(cli.home)
    one = verify_bundle(bundle, store=store, workers=1).as_dict()["findings"]
    many = verify_bundle(bundle, store=store, workers=4).as_dict()["findings"]
    assert one == many == findings(cli, bundle)
    assert [f["kind"] for f in one] == ["payload-unlisted", "payload-changed", "payload-oxum"]


def test_malformed_manifest_line_is_named(copy):
    cli, bundle = copy
    manifest = bundle / "manifest-sha256.txt"
    lines = manifest.read_text().splitlines(keepends=True)
    lines.insert(1, "not a digest  data/files/x\n")
    manifest.write_text("".join(lines))
    assert ("manifest-line-malformed", "manifest-sha256.txt:2") in kinds(findings(cli, bundle))


def test_items_jsonl_edited(copy):
    cli, bundle = copy
    items = bundle / "metadata/items.jsonl"
    items.write_text(items.read_text().replace('"status":"ok"', '"status":"error"', 1))
    assert ("tag-file-changed", "metadata/items.jsonl") in kinds(findings(cli, bundle))


def test_manifest_line_edited_tagmanifest_recomputed_not_resigned(copy):
    cli, bundle = copy
    _path, rel = payload(bundle, "auth.log")
    manifest = bundle / "manifest-sha256.txt"
    manifest.write_text(
        "".join(
            ("0" * 64 + "  " + rel + "\n") if line.endswith("  " + rel) else line + "\n"
            for line in manifest.read_text().splitlines()
        )
    )
    rehash_tagmanifest(bundle)
    found = kinds(findings(cli, bundle))
    assert ("signature-invalid", "tagmanifest-sha256.txt.sig") in found
    assert ("minisign-invalid", "tagmanifest-sha256.txt.minisig") in found
    assert ("payload-changed", rel) in found
    assert ("sealed-event-mismatch", "custody/custody.jsonl:3") in found


def test_whole_bag_resigned_with_another_key(copy, tmp_path):
    cli, bundle = copy
    store = KeyStore(tmp_path / "mallory")
    store.generate("Mallory", "attacker", "Nowhere")
    mallory = store.load_signer(None)
    for name in ("signer.pub.pem", "signer.minisign.pub"):
        (bundle / "keys" / name).unlink()
    shutil.copyfile(
        next((tmp_path / "mallory/keys").iterdir()) / "public.pem", bundle / "keys/signer.pub.pem"
    )
    shutil.copyfile(
        next((tmp_path / "mallory/keys").iterdir()) / "minisign.pub", bundle / "keys/signer.minisign.pub"
    )
    info = bundle / "bag-info.txt"
    info.write_text(
        "\n".join(
            f"Sealbox-Signer-Fingerprint: {mallory.fingerprint}"
            if line.startswith("Sealbox-Signer")
            else line
            for line in info.read_text().splitlines()
        )
        + "\n"
    )
    rehash_tagmanifest(bundle)
    tagmanifest = (bundle / "tagmanifest-sha256.txt").read_bytes()
    (bundle / "tagmanifest-sha256.txt.sig").write_bytes(mallory.sign(tagmanifest))
    (bundle / "tagmanifest-sha256.txt.minisig").write_text(mallory.minisign(tagmanifest, "forged"))
    proc = cli("verify", bundle)
    assert proc.returncode == 1
    assert f"signer-untrusted: keys/signer.pub.pem: signed by {mallory.fingerprint}" in proc.stdout
    found = kinds(findings(cli, bundle))
    assert ("signature-invalid", "tagmanifest-sha256.txt.sig") not in found
    assert ("sealed-by-other-key", "custody/custody.jsonl:3") in found
    # Trusting Mallory explicitly removes only the trust finding, not the custody one.
    found = kinds(findings(cli, bundle, "--trust", mallory.fingerprint))
    assert ("signer-untrusted", "keys/signer.pub.pem") not in found
    assert ("sealed-by-other-key", "custody/custody.jsonl:3") in found


def test_custody_line_removed(copy):
    cli, bundle = copy
    custody = bundle / "custody/custody.jsonl"
    lines = custody.read_bytes().splitlines(keepends=True)
    custody.write_bytes(lines[0] + lines[2])
    found = kinds(findings(cli, bundle))
    assert ("custody-link-broken", "custody/custody.jsonl:2") in found
    assert ("custody-seq-gap", "custody/custody.jsonl:2") in found
    assert ("tag-file-changed", "custody/custody.jsonl") in found


def test_custody_lines_swapped(copy):
    cli, bundle = copy
    custody = bundle / "custody/custody.jsonl"
    lines = custody.read_bytes().splitlines(keepends=True)
    custody.write_bytes(lines[1] + lines[0] + lines[2])
    found = kinds(findings(cli, bundle))
    assert ("custody-link-broken", "custody/custody.jsonl:1") in found
    assert ("custody-seq-gap", "custody/custody.jsonl:1") in found


def test_bag_info_edited(copy):
    cli, bundle = copy
    info = bundle / "bag-info.txt"
    info.write_text(info.read_text().replace("OKC-2026-0042", "OKC-2026-9999"))
    assert kinds(findings(cli, bundle)) == {("tag-file-changed", "bag-info.txt")}


def test_never_sealed_bundle(copy):
    cli, bundle = copy
    renamed = bundle.with_name(bundle.name + ".incomplete")
    bundle.rename(renamed)
    assert ("bundle-incomplete", renamed.name) in kinds(findings(cli, renamed))


def test_not_a_bundle_exits_2(cli, tmp_path):
    proc = cli("verify", tmp_path)
    assert proc.returncode == 2 and "not a sealbox bundle" in proc.stderr
    proc = cli("verify", "--trust", "SHA256:abc", tmp_path)
    assert proc.returncode == 2 and "not a full fingerprint" in proc.stderr
