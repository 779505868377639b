"""Every finding kind verify knows is produced by a bundle broken on purpose (built here, by code,
named for what is wrong), and every rule of the registry names only kinds of the enum."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import TYPE_CHECKING, Any

import pytest

from manifest.findings import Finding, FindingKind
from manifest.signing.custody import append_event
from manifest.signing.keys import KeyStore
from manifest.verify import verify_bundle
from manifest.verify.rules import RULES
from tests.support.builders import sealed_bundle, writable_copy
from tests.support.tsa import make_tsa, openssl_stamp

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

K = FindingKind


@pytest.fixture(scope="module")
def tsa(tmp_path_factory):
    from tests.support.env import require_tool

    return make_tsa(tmp_path_factory.mktemp("tsa"), require_tool("openssl"))


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    files = {
        "logs/auth.log": "Nov 24 sshd: Accepted password for root\n" * 50,
        "logs/syslog": "kernel: something\n" * 20,
        "notes.txt": "three files make a bundle\n",
    }
    note = ("--event", "note", "--reason", "looked at it")
    with sealed_bundle(tmp_path_factory.mktemp("kinds"), files, (note,)) as pair:
        yield pair


class Case:
    """A writable copy of the sealed bundle to break, and the arguments verify gets."""

    def __init__(self, cli: Any, bundle: Path, original: Path, tmp: Path, tsa: dict) -> None:
        self.cli, self.bundle, self.original, self.tmp, self.tsa = cli, bundle, original, tmp, tsa
        self.kwargs: dict[str, Any] = {"store": KeyStore(cli.home), "workers": 2}

    def payload(self, name: str) -> Path:
        return next(p for p in (self.bundle / "data/files").rglob(name))

    def lines(self, rel: str) -> list[bytes]:
        return (self.bundle / rel).read_bytes().splitlines(keepends=True)

    def write_lines(self, rel: str, lines: list[bytes]) -> None:
        (self.bundle / rel).write_bytes(b"".join(lines))

    def edit_bytes(self, rel: str, old: bytes, new: bytes) -> None:
        path = self.bundle / rel
        data = path.read_bytes()
        assert old in data, (rel, old)
        path.write_bytes(data.replace(old, new, 1))

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.bundle / rel
        text = path.read_text()
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new, 1))

    def event_lines(self, rel: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines(rel)]

    def mallory(self):
        store = KeyStore(self.tmp / "mallory")
        store.generate("Mallory", "attacker", "Nowhere")
        return store.load_signer(None)


def _first_item_with_file(case: Case) -> tuple[int, dict[str, Any]]:
    for n, raw in enumerate(case.lines("metadata/items.jsonl")):
        item = json.loads(raw)
        if item.get("stored_as"):
            return n, item
    raise AssertionError("no stored item")


def _set_item(case: Case, change: Callable[[dict[str, Any]], None]) -> None:
    lines = case.lines("metadata/items.jsonl")
    n, item = _first_item_with_file(case)
    change(item)
    lines[n] = json.dumps(item, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    case.write_lines("metadata/items.jsonl", lines)


def _tsr_granted_over(data: bytes) -> bytes:
    """The smallest reply sealbox's parser takes as granted and holding the imprint of `data`
    (no signature at all)."""
    oid = bytes.fromhex("0609608648016503040201")
    body = bytes.fromhex("3003020100") + oid + b"\x05\x00" + b"\x04\x20" + hashlib.sha256(data).digest()
    return b"\x30" + bytes([len(body)]) + body


def bundle_renamed_incomplete(case: Case) -> None:
    renamed = case.bundle.with_name(case.bundle.name + ".incomplete")
    case.bundle.rename(renamed)
    case.bundle = renamed


def tag_file_replaced_by_symlink(case: Case) -> None:
    body = case.bundle / "metadata/bodyfile.txt"
    shutil.copyfile(body, case.tmp / "outside-copy.txt")
    body.unlink()
    body.symlink_to(case.tmp / "outside-copy.txt")


def tag_file_deleted(case: Case) -> None:
    (case.bundle / "metadata/bodyfile.txt").unlink()


def signer_key_grown_sparse(case: Case) -> None:
    os.truncate(case.bundle / "keys/signer.minisign.pub", 3 << 20)


def bagit_declaration_old_version(case: Case) -> None:
    (case.bundle / "bagit.txt").write_text("BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n")


def bag_info_without_case(case: Case) -> None:
    case.write_lines(
        "bag-info.txt", [x for x in case.lines("bag-info.txt") if not x.startswith(b"External-Identifier")]
    )


def bag_info_oxum_not_numbers(case: Case) -> None:
    case.write_lines(
        "bag-info.txt",
        [
            b"Payload-Oxum: many.files\n" if x.startswith(b"Payload-Oxum") else x
            for x in case.lines("bag-info.txt")
        ],
    )


def bag_info_format_2(case: Case) -> None:
    case.edit("bag-info.txt", "Sealbox-Format: 1", "Sealbox-Format: 2")


def manifest_with_junk_line(case: Case) -> None:
    lines = case.lines("manifest-sha256.txt")
    case.write_lines("manifest-sha256.txt", [lines[0], b"not a digest  data/files/x\n", *lines[1:]])


def manifest_naming_parent_dir(case: Case) -> None:
    lines = case.lines("manifest-sha256.txt")
    case.write_lines("manifest-sha256.txt", [*lines, b"0" * 64 + b"  data/../../etc/passwd\n"])


def manifest_line_twice(case: Case) -> None:
    lines = case.lines("manifest-sha256.txt")
    case.write_lines("manifest-sha256.txt", [*lines, lines[0]])


def bag_info_case_edited(case: Case) -> None:
    case.edit("bag-info.txt", "OKC-2026-0042", "OKC-2026-9999")


def tag_file_planted(case: Case) -> None:
    (case.bundle / "metadata/planted.txt").write_text("not sealed\n")


def bag_info_dropped_from_tagmanifest(case: Case) -> None:
    case.write_lines(
        "tagmanifest-sha256.txt",
        [x for x in case.lines("tagmanifest-sha256.txt") if not x.endswith(b"  bag-info.txt\n")],
    )


def signer_pem_deleted(case: Case) -> None:
    (case.bundle / "keys/signer.pub.pem").unlink()


def signer_pem_garbage(case: Case) -> None:
    (case.bundle / "keys/signer.pub.pem").write_bytes(
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    )


def bag_info_names_other_signer(case: Case) -> None:
    case.write_lines(
        "bag-info.txt",
        [
            b"Sealbox-Signer-Fingerprint: SHA256:" + b"ab" * 32 + b"\n"
            if x.startswith(b"Sealbox-Signer")
            else x
            for x in case.lines("bag-info.txt")
        ],
    )


def verifier_trusts_nobody(case: Case) -> None:
    case.kwargs["store"] = KeyStore(case.tmp / "empty-store")


def signature_deleted(case: Case) -> None:
    (case.bundle / "tagmanifest-sha256.txt.sig").unlink()


def signature_bit_flipped(case: Case) -> None:
    sig = bytearray((case.bundle / "tagmanifest-sha256.txt.sig").read_bytes())
    sig[5] ^= 1
    (case.bundle / "tagmanifest-sha256.txt.sig").write_bytes(bytes(sig))


def minisig_not_utf8(case: Case) -> None:
    (case.bundle / "tagmanifest-sha256.txt.minisig").write_bytes(b"untrusted comment: \xff\xfe\n")


def payload_planted(case: Case) -> None:
    (case.bundle / "data/files/planted.txt").write_text("I was not collected\n")


def payload_deleted(case: Case) -> None:
    case.payload("notes.txt").unlink()


def payload_truncated(case: Case) -> None:
    os.truncate(case.payload("syslog"), 5)


def payload_grown_sparse_to_200_gb(case: Case) -> None:
    os.truncate(case.payload("auth.log"), 200 << 30)


def payload_replaced_by_symlink(case: Case) -> None:
    path = case.payload("syslog")
    path.unlink()
    path.symlink_to("/etc/passwd")


def payload_byte_flipped(case: Case) -> None:
    path = case.payload("auth.log")
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    path.write_bytes(bytes(data))


def items_line_not_json(case: Case) -> None:
    case.write_lines("metadata/items.jsonl", [*case.lines("metadata/items.jsonl"), b"{\n"])


def items_lines_swapped(case: Case) -> None:
    lines = case.lines("metadata/items.jsonl")
    case.write_lines("metadata/items.jsonl", [lines[1], lines[0], *lines[2:]])


def item_size_is_text(case: Case) -> None:
    _set_item(case, lambda item: item.update(size=str(item["size"])))


def item_sha256_other(case: Case) -> None:
    _set_item(case, lambda item: item.update(sha256="0" * 64))


def item_stored_twice(case: Case) -> None:
    lines = case.lines("metadata/items.jsonl")
    _n, item = _first_item_with_file(case)
    item["id"] = "9" * 12
    case.write_lines("metadata/items.jsonl", [*lines, json.dumps(item, sort_keys=True).encode() + b"\n"])


def item_of_payload_removed(case: Case) -> None:
    lines = case.lines("metadata/items.jsonl")
    n, _item = _first_item_with_file(case)
    del lines[n]
    case.write_lines("metadata/items.jsonl", lines)


def custody_log_deleted(case: Case) -> None:
    (case.bundle / "custody/custody.jsonl").unlink()


def continuation_line_not_json(case: Case) -> None:
    rel = "custody/continuation.jsonl"
    case.write_lines(rel, [*case.lines(rel), b"not json\n"])


def custody_middle_line_removed(case: Case) -> None:
    lines = case.lines("custody/custody.jsonl")
    case.write_lines("custody/custody.jsonl", [lines[0], *lines[2:]])


def custody_reason_edited(case: Case) -> None:
    rel = "custody/continuation.jsonl"
    case.edit(rel, "looked at it", "never looked")


def custody_line_reserialized_with_spaces(case: Case) -> None:
    rel = "custody/continuation.jsonl"
    events = case.event_lines(rel)
    case.write_lines(rel, [json.dumps(ev, sort_keys=True).encode() + b"\n" for ev in events])


def custody_event_names_other_bundle(case: Case) -> None:
    rel = "custody/continuation.jsonl"
    bundle_id = case.event_lines(rel)[-1]["bundle"]
    case.edit(rel, bundle_id, "00000000-0000-0000-0000-000000000000")


def received_event_forged_by_untrusted_key(case: Case) -> None:
    append_event(case.bundle, case.mallory(), "received", {"from": "the courier"})


def _transfer(case: Case, to_key: str) -> tuple[int, str]:
    """The bundle's own signer hands it over to `to_key`: (seq, SHA-256 of the transfer's line)."""
    owner = KeyStore(case.cli.home).load_signer(None)
    ev = append_event(case.bundle, owner, "transferred", {"to": "Mallory, Nowhere", "to_key": to_key})
    line = case.lines("custody/continuation.jsonl")[-1].rstrip(b"\n")
    return ev["seq"], hashlib.sha256(line).hexdigest()


def _accept(case: Case, signer: Any, seq: Any, sha: str) -> None:
    append_event(case.bundle, signer, "accepted", {"transfer_seq": seq, "transfer_sha256": sha})


def accept_naming_another_line_hash(case: Case) -> None:
    mallory = case.mallory()
    seq, _sha = _transfer(case, mallory.fingerprint)
    _accept(case, mallory, seq, "0" * 64)


def accept_by_a_key_the_transfer_does_not_name(case: Case) -> None:
    seq, sha = _transfer(case, "SHA256:" + "ab" * 32)
    _accept(case, case.mallory(), seq, sha)


def accept_made_twice(case: Case) -> None:
    mallory = case.mallory()
    seq, sha = _transfer(case, mallory.fingerprint)
    _accept(case, mallory, seq, sha)
    _accept(case, mallory, seq, sha)


def accept_naming_seq_as_text(case: Case) -> None:
    mallory = case.mallory()
    seq, sha = _transfer(case, mallory.fingerprint)
    _accept(case, mallory, str(seq), sha)


def sealed_event_renamed(case: Case) -> None:
    case.edit("custody/custody.jsonl", '"event":"sealed"', '"event":"note"')


def sealed_event_copied_after_seal(case: Case) -> None:
    sealed = case.lines("custody/custody.jsonl")[-1]
    rel = "custody/continuation.jsonl"
    case.write_lines(rel, [*case.lines(rel), sealed])


def sealed_event_not_last(case: Case) -> None:
    lines = case.lines("custody/custody.jsonl")
    case.write_lines("custody/custody.jsonl", [*lines[:-2], lines[-1], lines[-2]])


def manifest_line_appended(case: Case) -> None:
    lines = case.lines("manifest-sha256.txt")
    case.write_lines("manifest-sha256.txt", lines[:-1])


def sealed_event_key_swapped(case: Case) -> None:
    lines = case.lines("custody/custody.jsonl")
    ev = json.loads(lines[-1])
    ev["actor"]["key"] = "SHA256:" + "cd" * 32
    lines[-1] = json.dumps(ev, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    case.write_lines("custody/custody.jsonl", lines)


def timestamp_garbage(case: Case) -> None:
    (case.bundle / "tagmanifest-sha256.txt.tsr").write_bytes(b"\x01\x02not DER")


def timestamp_for_other_data(case: Case) -> None:
    token = openssl_stamp(case.tsa, b"other data", case.tmp)
    (case.bundle / "tagmanifest-sha256.txt.tsr").write_bytes(token)


def timestamp_ca_not_a_certificate(case: Case) -> None:
    from tests.support.env import require_tool

    require_tool("openssl")
    tag = (case.bundle / "tagmanifest-sha256.txt").read_bytes()
    (case.bundle / "tagmanifest-sha256.txt.tsr").write_bytes(_tsr_granted_over(tag))
    (case.tmp / "ca.pem").write_text("not a certificate\n")
    case.kwargs["tsa_ca"] = case.tmp / "ca.pem"


def continuation_crlf(case: Case) -> None:
    rel = "custody/continuation.jsonl"
    case.write_lines(rel, [line.replace(b"\n", b"\r\n") for line in case.lines(rel)])


def continuation_not_utf8(case: Case) -> None:
    case.edit_bytes("custody/continuation.jsonl", b"looked at it", b"looked at \xff")


def continuation_seq_as_text(case: Case) -> None:
    rel = "custody/continuation.jsonl"
    seq = case.event_lines(rel)[-1]["seq"]
    case.edit(rel, f'"seq":{seq}', f'"seq":"{seq}"')


def continuation_last_newline_cut(case: Case) -> None:
    path = case.bundle / "custody/continuation.jsonl"
    path.write_bytes(path.read_bytes()[:-1])


def _kept_receipt(case: Case) -> Path:
    """The receipt `custody add` kept in the key store for the fixture's note."""
    return sorted((case.cli.home / "receipts").rglob("*.json"))[-1]


def continuation_tail_cut_with_receipt(case: Case) -> None:
    case.kwargs["receipts"] = (_kept_receipt(case),)
    rel = "custody/continuation.jsonl"
    case.write_lines(rel, case.lines(rel)[:-1])


def continuation_tail_rewritten_with_receipt(case: Case) -> None:
    case.kwargs["receipts"] = (_kept_receipt(case),)
    case.edit("custody/continuation.jsonl", "looked at it", "never looked")


def receipt_garbage(case: Case) -> None:
    garbage = case.tmp / "garbage-receipt.json"
    garbage.write_bytes(b"\xff\xfe not a receipt")
    case.kwargs["receipts"] = (garbage,)


def _receipt_from(case: Case, signer: Any, **changes: Any) -> Path:
    from manifest.format.canonical import canonical_bytes
    from manifest.signing.receipts import make_receipt

    raw = case.lines("custody/continuation.jsonl")[-1].rstrip(b"\n")
    body = make_receipt(signer, json.loads(raw) | changes, raw, case.bundle)
    path = case.tmp / f"receipt-{len(list(case.tmp.iterdir()))}.json"
    path.write_bytes(canonical_bytes(body) + b"\n")
    case.kwargs["receipts"] = (path,)
    return path


def receipt_seq_changed_after_signing(case: Case) -> None:
    path = _receipt_from(case, KeyStore(case.cli.home).load_signer(None))
    body = json.loads(path.read_bytes())
    body["seq"] += 3
    from manifest.format.canonical import canonical_bytes

    path.write_bytes(canonical_bytes(body) + b"\n")


def receipt_by_a_stranger(case: Case) -> None:
    _receipt_from(case, case.mallory())


def receipt_for_another_bundle(case: Case) -> None:
    _receipt_from(case, KeyStore(case.cli.home).load_signer(None), bundle="another-bundle")


def _self_signed_ca(case: Case) -> Path:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some other CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = case.tmp / "other-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def timestamp_signed_by_a_tsa_of_another_ca(case: Case) -> None:
    tag = (case.bundle / "tagmanifest-sha256.txt").read_bytes()
    (case.bundle / "tagmanifest-sha256.txt.tsr").write_bytes(openssl_stamp(case.tsa, tag, case.tmp))
    case.kwargs["tsa_ca"] = _self_signed_ca(case)


def timestamp_without_tagmanifest(case: Case) -> None:
    (case.bundle / "tagmanifest-sha256.txt.tsr").write_bytes(b"\x30\x00")
    (case.bundle / "tagmanifest-sha256.txt").unlink()


def previous_not_linked(case: Case) -> None:
    case.kwargs["previous"] = case.original


def previous_link_wrong(case: Case) -> None:
    lines = case.lines("bag-info.txt")
    case.write_lines("bag-info.txt", [*lines, b"Sealbox-Previous-Bundle: " + b"0" * 64 + b"\n"])
    case.kwargs["previous"] = case.original


BROKEN: dict[FindingKind, Callable[[Case], None]] = {
    K.BUNDLE_INCOMPLETE: bundle_renamed_incomplete,
    K.NOT_REGULAR_FILE: tag_file_replaced_by_symlink,
    K.TAG_FILE_MISSING: tag_file_deleted,
    K.TAG_FILE_TOO_LARGE: signer_key_grown_sparse,
    K.BAGIT_DECLARATION: bagit_declaration_old_version,
    K.BAG_INFO_FIELD_MISSING: bag_info_without_case,
    K.BAG_INFO_FIELD_INVALID: bag_info_oxum_not_numbers,
    K.FORMAT_UNSUPPORTED: bag_info_format_2,
    K.MANIFEST_LINE_MALFORMED: manifest_with_junk_line,
    K.UNSAFE_PATH: manifest_naming_parent_dir,
    K.MANIFEST_DUPLICATE: manifest_line_twice,
    K.TAG_FILE_CHANGED: bag_info_case_edited,
    K.TAG_FILE_UNLISTED: tag_file_planted,
    K.TAG_FILE_UNPROTECTED: bag_info_dropped_from_tagmanifest,
    K.SIGNER_KEY_MISSING: signer_pem_deleted,
    K.SIGNER_KEY_INVALID: signer_pem_garbage,
    K.SIGNER_MISMATCH: bag_info_names_other_signer,
    K.SIGNER_UNTRUSTED: verifier_trusts_nobody,
    K.SIGNATURE_MISSING: signature_deleted,
    K.SIGNATURE_INVALID: signature_bit_flipped,
    K.MINISIGN_INVALID: minisig_not_utf8,
    K.PAYLOAD_UNLISTED: payload_planted,
    K.PAYLOAD_MISSING: payload_deleted,
    K.PAYLOAD_OXUM: payload_truncated,
    K.PAYLOAD_SIZE_MISMATCH: payload_grown_sparse_to_200_gb,
    K.PAYLOAD_UNREADABLE: payload_replaced_by_symlink,
    K.PAYLOAD_CHANGED: payload_byte_flipped,
    K.ITEMS_UNREADABLE: items_line_not_json,
    K.ITEMS_ORDER: items_lines_swapped,
    K.ITEM_FIELD_INVALID: item_size_is_text,
    K.ITEM_DISAGREES: item_sha256_other,
    K.ITEM_STORED_TWICE: item_stored_twice,
    K.ITEM_MISSING: item_of_payload_removed,
    K.CUSTODY_MISSING: custody_log_deleted,
    K.CUSTODY_UNREADABLE: continuation_line_not_json,
    K.CUSTODY_LINK_BROKEN: custody_middle_line_removed,
    K.CUSTODY_SEQ_GAP: custody_middle_line_removed,
    K.CUSTODY_SIGNATURE_INVALID: custody_reason_edited,
    K.CUSTODY_NOT_CANONICAL: custody_line_reserialized_with_spaces,
    K.CUSTODY_WRONG_BUNDLE: custody_event_names_other_bundle,
    K.CUSTODY_EVENT_UNTRUSTED: received_event_forged_by_untrusted_key,
    K.SEALED_EVENT_MISSING: sealed_event_renamed,
    K.SEALED_EVENT_REPEATED: sealed_event_copied_after_seal,
    K.SEALED_EVENT_MISPLACED: sealed_event_not_last,
    K.SEALED_EVENT_MISMATCH: manifest_line_appended,
    K.SEALED_BY_OTHER_KEY: sealed_event_key_swapped,
    K.TIMESTAMP_UNREADABLE: timestamp_garbage,
    K.TIMESTAMP_MISMATCH: timestamp_for_other_data,
    K.TIMESTAMP_INVALID: timestamp_signed_by_a_tsa_of_another_ca,
    K.TIMESTAMP_CA_UNREADABLE: timestamp_ca_not_a_certificate,
    K.CUSTODY_LINE_ENDING: continuation_crlf,
    K.CUSTODY_NOT_UTF8: continuation_not_utf8,
    K.CUSTODY_FIELD_INVALID: continuation_seq_as_text,
    K.CUSTODY_LINE_PARTIAL: continuation_last_newline_cut,
    K.CUSTODY_TAIL_TRUNCATED: continuation_tail_cut_with_receipt,
    K.CUSTODY_RECEIPT_MISMATCH: continuation_tail_rewritten_with_receipt,
    K.RECEIPT_MALFORMED: receipt_garbage,
    K.RECEIPT_INVALID: receipt_seq_changed_after_signing,
    K.RECEIPT_UNTRUSTED: receipt_by_a_stranger,
    K.RECEIPT_WRONG_BUNDLE: receipt_for_another_bundle,
    K.TIMESTAMP_ORPHAN: timestamp_without_tagmanifest,
    K.PREVIOUS_BUNDLE_UNLINKED: previous_not_linked,
    K.PREVIOUS_BUNDLE_MISMATCH: previous_link_wrong,
    K.CUSTODY_ACCEPT_UNMATCHED: accept_naming_another_line_hash,
    K.CUSTODY_ACCEPT_WRONG_KEY: accept_by_a_key_the_transfer_does_not_name,
    K.CUSTODY_ACCEPT_REPEATED: accept_made_twice,
    K.CUSTODY_DETAILS_INVALID: accept_naming_seq_as_text,
}


def test_every_kind_has_a_broken_bundle():
    assert set(BROKEN) == set(FindingKind)


def test_every_rule_names_only_enum_kinds_and_together_all_of_them():
    named: set[FindingKind] = set()
    for rule in RULES:
        assert rule.kinds <= set(FindingKind), type(rule).__name__
        assert type(rule).__doc__, f"{type(rule).__name__} says what it checks"
        named |= rule.kinds
    assert named == set(FindingKind)


# The kinds found while data/ is hashed and checked against what lists it: they come back from
# the hashing workers, so they are checked with a pool of two; the others with none.
POOLED = ("payload-", "manifest-", "item", "unsafe-path", "not-regular-file")


@pytest.mark.parametrize("kind", list(FindingKind), ids=lambda k: f"{k.value}-by-{BROKEN[k].__name__}")
def test_kind_is_found(kind: FindingKind, sealed, tsa, tmp_path, monkeypatch):
    cli, original = sealed
    case = Case(cli, writable_copy(original, tmp_path), original, tmp_path, tsa)
    # In-process hashing (workers=1) where a pool adds nothing but its start-up time.
    one_worker = {**case.kwargs, "workers": 1}
    assert verify_bundle(case.bundle, **one_worker).ok, "the copy verifies before it is broken"
    BROKEN[kind](case)
    if "_path" in case.kwargs:
        monkeypatch.setenv("PATH", case.kwargs.pop("_path"))
    case.kwargs["workers"] = 2 if kind.value.startswith(POOLED) else 1
    report = verify_bundle(case.bundle, **case.kwargs)
    found = {f.kind for f in report.findings}
    assert kind in found, [f.line() for f in report.findings]
    assert not report.ok
    for finding in report.findings:
        assert finding.path, finding  # every finding names a place a machine can read
        assert json.dumps(finding.as_dict())
    # The streamed check (no index) and the exact, indexed one reach the same findings.
    monkeypatch.setattr("manifest.verify.rules.stream_check", lambda _bundle: None)
    exact = verify_bundle(case.bundle, **case.kwargs)
    assert sorted((f.kind, f.where, str(f.expected), str(f.found)) for f in exact.findings) == sorted(
        (f.kind, f.where, str(f.expected), str(f.found)) for f in report.findings
    )
    assert (exact.payload_files, exact.payload_bytes, exact.items) == (
        report.payload_files,
        report.payload_bytes,
        report.items,
    )


def test_finding_accepts_a_plain_string_kind():
    """Other modules add kinds as plain strings before they join the enum."""
    finding = Finding("custody-anchor-missing", "custody/continuation.jsonl:4", "no receipt")
    assert finding.as_dict()["kind"] == "custody-anchor-missing"
    assert (finding.path, finding.lineno, finding.item) == ("custody/continuation.jsonl", 4, None)
    item = Finding(K.ITEM_DISAGREES, "item 000012 (metadata/items.jsonl:12)", "x")
    assert (item.path, item.lineno, item.item) == ("metadata/items.jsonl", 12, "000012")
    assert item.as_dict()["kind"] == "item-disagrees"
