"""The rules of SPEC §6, each a small object that reads the parsed bundle and adds its findings.

`RULES` is the one registry `verify_bundle` runs, in order. A rule never raises for bad input: what
it cannot read is a finding, what it cannot decide from the bundle alone is a note.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from typing import TYPE_CHECKING, Any, Protocol

from manifest.findings import Finding, FindingKind
from manifest.format import bagit
from manifest.hashing import Expected, check_sized_batch, lstat_size, sha256_file, sha256_files_or_errors
from manifest.osio.parallel import few_collections, ordered_map
from manifest.previous import PREVIOUS_FIELD, tagmanifest_digest
from manifest.signing.custody import (
    CONTINUATION,
    CUSTODY,
    ChainLine,
    check_transfers,
    open_transfers_note,
    verify_chain,
)
from manifest.signing.keys import KeyError_, fingerprint, load_public_pem, verify_signature
from manifest.signing.minisign import key_id, verify_prehashed
from manifest.signing.receipts import check_custody_anchors
from manifest.signing.timestamp import timestamp_status
from manifest.verify.model import ITEMS, MINISIGN_PUB, PEM, dangerous
from manifest.verify.stream import stream_check

if TYPE_CHECKING:
    from collections.abc import Iterator

    from manifest.hashing import BatchCheck
    from manifest.verify.model import BundleModel
    from manifest.verify.report import VerifyReport

K = FindingKind


class Rule(Protocol):
    """One check. `kinds` are the finding kinds it can add (the test suite proves each one)."""

    kinds: frozenset[FindingKind]

    def check(self, bundle: BundleModel, report: VerifyReport) -> None: ...


def _not_a_file(bundle: BundleModel, rel: str, what: str) -> Finding | None:
    """The finding for a tag file that is absent or not a regular file; None when it is one."""
    entry = bundle.entries.get(rel)
    if entry is None:
        return Finding(K.TAG_FILE_MISSING, rel, f"{what} is missing")
    if entry.kind != "file":
        return Finding(K.TAG_FILE_MISSING, rel, f"{what} is a {entry.kind}, not a regular file: not read")
    return None


class NeverSealed:
    """A directory still named `.incomplete` was never sealed."""

    kinds = frozenset({K.BUNDLE_INCOMPLETE})

    def check(self, bundle: BundleModel, report: VerifyReport) -> None:
        if bundle.incomplete:
            report.add(
                K.BUNDLE_INCOMPLETE,
                bundle.path.name,
                "never sealed: the name still ends in .incomplete "
                "(to finish it, run the interrupted command again with --resume)",
            )


class RegularFilesOnly:
    """Outside data/ (data/ is the payload rule's): only regular files and directories."""

    kinds = frozenset({K.NOT_REGULAR_FILE})

    def check(self, bundle: BundleModel, report: VerifyReport) -> None:
        for rel, entry in sorted(bundle.entries.items()):
            if entry.kind == "unreadable":
                report.add(K.NOT_REGULAR_FILE, rel or ".", "a directory verify cannot list")
            elif entry.kind not in ("file", "directory"):
                report.add(
                    K.NOT_REGULAR_FILE, rel, f"a {entry.kind}: a bundle holds only files and directories"
                )


class TagFileCaps:
    """No tag file is bigger than verify reads (the cap is named in the finding)."""

    kinds = frozenset({K.TAG_FILE_TOO_LARGE})

    def check(self, bundle: BundleModel, report: VerifyReport) -> None:
        for rel in sorted(bundle.entries):
            if not rel.startswith("data/") and (finding := bundle.too_large(rel)):
                report.findings.append(finding)


class Declarations:
    """bagit.txt is the BagIt 1.0 declaration; bag-info.txt has sealbox's fields, well formed."""

    kinds = frozenset(
        {K.BAGIT_DECLARATION, K.BAG_INFO_FIELD_MISSING, K.BAG_INFO_FIELD_INVALID, K.FORMAT_UNSUPPORTED}
    )
    required = (
        "External-Identifier",
        "Payload-Oxum",
        "Sealbox-Format",
        "Sealbox-Bundle-Id",
        "Sealbox-Signer-Fingerprint",
    )

    def check(self, bundle: BundleModel, report: VerifyReport) -> None:
        if problem := _not_a_file(bundle, "bagit.txt", "the BagIt declaration"):
            report.findings.append(problem)
        elif "bagit.txt" in bundle.small and bundle.small["bagit.txt"] != bagit.BAGIT_TXT:
            report.add(K.BAGIT_DECLARATION, "bagit.txt", "not a BagIt 1.0 UTF-8 declaration")
        if problem := _not_a_file(bundle, "bag-info.txt", "bag-info.txt"):
            report.findings.append(problem)
            return
        if "bag-info.txt" not in bundle.small:
            return  # over its cap: TagFileCaps says so
        info = bundle.info
        for label in self.required:
            if label not in info:
                report.add(K.BAG_INFO_FIELD_MISSING, "bag-info.txt", f"field {label} is missing")
        link = info.get(PREVIOUS_FIELD)
        if link is not None and not re.fullmatch("[0-9a-f]{64}", link):
            report.add(K.BAG_INFO_FIELD_INVALID, "bag-info.txt", f"{PREVIOUS_FIELD} is not a SHA-256 in hex")
        oxum = info.get("Payload-Oxum")
        if oxum is not None and parse_oxum(oxum) is None:
            report.add(K.BAG_INFO_FIELD_INVALID, "bag-info.txt", "Payload-Oxum is not '<bytes>.<files>'")
        if info.get("Sealbox-Format", "1") != "1":
            report.add(
                K.FORMAT_UNSUPPORTED,
                "bag-info.txt",
                "unknown Sealbox-Format",
                "1",
                info.get("Sealbox-Format"),
            )


def parse_oxum(text: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"([0-9]{1,20})\.([0-9]{1,20})", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


class TagManifest:
    """Every tag file listed is there, regular and intact; every tag file there is listed."""

    kinds = frozenset(
        {
            K.TAG_FILE_MISSING,
            K.TAG_FILE_CHANGED,
            K.TAG_FILE_UNLISTED,
            K.TAG_FILE_UNPROTECTED,
            K.MANIFEST_LINE_MALFORMED,
            K.MANIFEST_DUPLICATE,
            K.UNSAFE_PATH,
        }
    )
    must_be_covered = ("manifest-sha256.txt", "bag-info.txt", "bagit.txt", ITEMS, CUSTODY)

    def check(self, bundle: BundleModel, report: VerifyReport) -> None:
        name = bagit.TAGMANIFEST
        if problem := _not_a_file(bundle, name, name):
            report.findings.append(problem)
            return
        data = bundle.small.get(name)
        if data is None:
            return  # over its cap
        listed: dict[str, str] = {}
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if not raw and number == data.count(b"\n") + 1:
                break  # after the last newline
            where = f"{name}:{number}"
            match = re.fullmatch(rb"([0-9a-f]{64})  ([^\r]+)", raw)
            try:
                rel = match.group(2).decode() if match else None
            except UnicodeDecodeError:
                rel = None
            if match is None or rel is None:
                report.add(K.MANIFEST_LINE_MALFORMED, where, "not '<sha256>  <path>'")
            elif dangerous(rel) or rel.startswith("data/") or rel in bagit.NOT_IN_TAGMANIFEST:
                report.add(K.UNSAFE_PATH, where, f"path '{rel}' is not a tag file of this bag")
            elif rel in listed:
                report.add(K.MANIFEST_DUPLICATE, where, f"'{rel}' is listed twice")
            else:
                listed[rel] = match.group(1).decode()
        to_hash = []
        for rel in listed:
            if problem := _not_a_file(bundle, rel, f"{rel}, listed in {name},"):
                report.findings.append(problem)
            elif bundle.within_cap(rel):  # else TagFileCaps names it
                to_hash.append(rel)
        for rel, found in zip(
            to_hash, sha256_files_or_errors([bundle.path / r for r in to_hash]), strict=True
        ):
            if isinstance(found, OSError):
                why = (found.strerror or str(found)).lower()
                report.add(K.TAG_FILE_MISSING, rel, f"cannot be read: {why}")
            elif found != listed[rel]:
                report.add(K.TAG_FILE_CHANGED, rel, f"content differs from {name}", listed[rel], found)
        for rel, entry in sorted(bundle.entries.items()):
            if entry.kind == "file" and rel not in listed and rel not in bagit.NOT_IN_TAGMANIFEST:
                report.add(K.TAG_FILE_UNLISTED, rel, f"tag file not listed in {name}")
        for rel in self.must_be_covered:
            if bundle.regular(rel) and rel not in listed:
                report.add(K.TAG_FILE_UNPROTECTED, rel, "required tag file is not covered by the signature")


class Signer:
    """keys/signer.pub.pem is a valid key, the one bag-info names, and one the verifier trusts."""

    kinds = frozenset({K.SIGNER_KEY_MISSING, K.SIGNER_KEY_INVALID, K.SIGNER_MISMATCH, K.SIGNER_UNTRUSTED})

    def check(self, bundle: BundleModel, report: VerifyReport) -> None:
        if (entry := bundle.entries.get(PEM)) is None or entry.kind != "file":
            what = "missing" if entry is None else f"a {entry.kind}, not a regular file"
            report.add(K.SIGNER_KEY_MISSING, PEM, f"the signer's public key is {what}")
            return
        pem = bundle.small.get(PEM)
        if pem is None:
            return  # over its cap
        try:
            public = load_public_pem(pem, PEM)
        except KeyError_ as exc:
            report.add(K.SIGNER_KEY_INVALID, PEM, exc.message)
            return
        fp = fingerprint(public)
        report.signer = fp
        declared = bundle.info.get("Sealbox-Signer-Fingerprint")
        if declared and declared != fp:
            report.add(
                K.SIGNER_MISMATCH,
                "bag-info.txt",
                "Sealbox-Signer-Fingerprint is not the key in keys/",
                fp,
                declared,
            )
        report.signer_trusted = fp in bundle.trusted
        if not report.signer_trusted:
            report.add(
                K.SIGNER_UNTRUSTED,
                PEM,
                f"signed by {fp}, which is not trusted",
                "a fingerprint given with --trust or in the trusted keys",
                fp,
            )


class Signatures:
    """The Ed25519 signature and the minisign signature over tagmanifest-sha256.txt."""

    kinds = frozenset({K.SIGNATURE_MISSING, K.SIGNATURE_INVALID, K.MINISIGN_INVALID, K.SIGNER_MISMATCH})

    def check(self, bundle: BundleModel, report: VerifyReport) -> None:
        tagmanifest = bundle.small.get(bagit.TAGMANIFEST)
        pem = bundle.small.get(PEM)
        if tagmanifest is None or pem is None:
            return  # the tag manifest and signer rules say why
        try:
            public = load_public_pem(pem, PEM)
        except KeyError_:
            return
        sig = bundle.small.get(bagit.SIG)
        if sig is None:
            if bundle.regular(bagit.SIG) is None:
                report.add(K.SIGNATURE_MISSING, bagit.SIG, "the Ed25519 signature is missing")
        elif not verify_signature(public, sig, tagmanifest):
            report.add(
                K.SIGNATURE_INVALID,
                bagit.SIG,
                f"signature does not match {bagit.TAGMANIFEST} for {PEM}",
            )
        mini_sig, mini_pub = bundle.small.get(bagit.MINISIG), bundle.small.get(MINISIGN_PUB)
        if mini_sig is None or mini_pub is None:
            if bundle.regular(bagit.MINISIG) is None or bundle.regular(MINISIGN_PUB) is None:
                report.add(K.SIGNATURE_MISSING, bagit.MINISIG, "the minisign signature or key is missing")
            return
        try:
            sig_text, pub_text = mini_sig.decode(), mini_pub.decode()
        except UnicodeDecodeError:
            report.add(K.MINISIGN_INVALID, bagit.MINISIG, "the minisign files are not UTF-8 text")
            return
        problem = verify_prehashed(pub_text, sig_text, tagmanifest)
        if problem:
            report.add(K.MINISIGN_INVALID, bagit.MINISIG, problem)
            return
        raw = public.public_bytes_raw()
        try:
            blob = base64.b64decode(pub_text.splitlines()[1])
        except (IndexError, ValueError, binascii.Error):
            blob = b""
        if blob[10:] != raw or blob[2:10] != key_id(raw):
            report.add(K.SIGNER_MISMATCH, MINISIGN_PUB, "minisign key is not the PEM key")


def _hash_batch(task: tuple[str, list[Expected]]) -> BatchCheck:
    return check_sized_batch(*task)


class Payload:
    """manifest-sha256.txt against data/: every listed file there, regular, of its recorded size
    (checked before it is read) and intact; nothing else in data/; Payload-Oxum holds. Streamed
    from the on-disk index: memory does not grow with the number of files."""

    kinds = frozenset(
        {
            K.TAG_FILE_MISSING,
            K.MANIFEST_LINE_MALFORMED,
            K.MANIFEST_DUPLICATE,
            K.UNSAFE_PATH,
            K.PAYLOAD_UNLISTED,
            K.PAYLOAD_MISSING,
            K.PAYLOAD_UNREADABLE,
            K.PAYLOAD_SIZE_MISMATCH,
            K.PAYLOAD_CHANGED,
            K.PAYLOAD_OXUM,
        }
    )

    def check(self, bundle: BundleModel, report: VerifyReport) -> None:
        name = bagit.MANIFEST
        if problem := _not_a_file(bundle, name, name):
            report.findings.append(problem)
        if (streamed := stream_check(bundle)) is not None:
            report.findings.extend(streamed.findings)
            report.payload_files, report.payload_bytes = streamed.files, streamed.nbytes
            bundle.payload.fast_items = streamed.items
            return
        index = bundle.payload.index(bundle)
        report.findings.extend(index.manifest_findings)
        if bundle.within_cap(name):
            try:
                report.findings.extend(index.manifest_duplicates(bundle.path / name))
            except OSError as exc:
                report.add(K.TAG_FILE_MISSING, name, f"cannot be read: {(exc.strerror or str(exc)).lower()}")
        if not index.manifest_read:
            return  # nothing to check data/ against: the finding above says why
        oxum = parse_oxum(bundle.info.get("Payload-Oxum", ""))
        disk_bytes = 0
        base = str(bundle.path) + "/"
        for rel, kind in index.query(
            "SELECT path, kind FROM d WHERE NOT EXISTS (SELECT 1 FROM m WHERE m.path = d.path) ORDER BY path"
        ):
            what = "file" if kind == "file" else f"{kind} (never followed)"
            report.add(K.PAYLOAD_UNLISTED, rel, f"{what} in data/ that {name} does not list")
            disk_bytes += lstat_size(base + rel)
        workers = max(1, bundle.workers or os.cpu_count() or 1)
        size = min(512, max(1, -(-index.manifest_unique // (workers * 16))))
        if index.manifest_unique <= size:
            workers = 1  # one batch: starting workers would cost more than it saves
        special = [0]  # bytes of listed entries that are not regular files (never opened)
        with few_collections():
            checked = [
                dataclasses.replace(result, inodes=[])
                for result in ordered_map(_hash_batch, _batches(bundle, report, size, oxum, special), workers)
                if result.missing or result.problems or result.files
            ]
        files = 0
        for batch in checked:
            files += batch.files
            disk_bytes += batch.nbytes
            for rel in batch.missing:
                report.add(K.PAYLOAD_MISSING, rel, f"listed in {name} but missing")
        report.payload_files = files
        report.payload_bytes = disk_bytes
        for batch in checked:
            for bad in batch.problems:
                disk_bytes += bad.size
                if bad.kind == "unreadable":
                    report.add(K.PAYLOAD_UNREADABLE, bad.rel, bad.detail)
                elif bad.kind == "size":
                    report.add(
                        K.PAYLOAD_SIZE_MISMATCH,
                        bad.rel,
                        "size on disk is not the size recorded in metadata/items.jsonl: not read",
                        bad.detail,
                        bad.found,
                    )
                else:
                    report.add(
                        K.PAYLOAD_CHANGED,
                        bad.rel,
                        f"content differs from {name}",
                        bad.detail,
                        bad.found,
                    )
        disk_bytes += special[0]
        found = f"{disk_bytes}.{index.data_entries}"
        declared = bundle.info.get("Payload-Oxum")
        if declared is not None and oxum is not None and oxum != (disk_bytes, index.data_entries):
            report.add(
                K.PAYLOAD_OXUM,
                "bag-info.txt",
                "Payload-Oxum (bytes.files) does not match data/",
                declared,
                found,
            )


def _batches(
    bundle: BundleModel, report: VerifyReport, size: int, oxum: tuple[int, int] | None, special: list[int]
) -> Iterator[tuple[str, list[Expected]]]:
    """Batches of listed regular files to hash, in manifest order; what the listing of data/
    already shows missing or not a regular file is a finding here, never opened."""
    base = str(bundle.path) + "/"
    at_most = oxum[0] if oxum else None
    batch: list[Expected] = []
    for rel, digest, kind, recorded in bundle.payload.index(bundle).query(
        "SELECT m.path, m.digest, d.kind,"
        " (SELECT size FROM i WHERE i.stored_as = m.path ORDER BY i.line LIMIT 1)"
        " FROM m LEFT JOIN d ON d.path = m.path ORDER BY m.line"
    ):
        if kind is None:
            report.add(K.PAYLOAD_MISSING, rel, f"listed in {bagit.MANIFEST} but missing")
        elif kind != "file":
            why = "a symlink, not a file" if kind == "symlink" else "not a regular file"
            report.add(K.PAYLOAD_UNREADABLE, rel, why)
            special[0] += lstat_size(base + rel)
        else:
            batch.append(Expected(rel, digest, recorded, at_most))
            if len(batch) >= size:
                yield base, batch
                batch = []
    if batch:
        yield base, batch


class Items:
    """items.jsonl agrees with manifest-sha256.txt: one item per payload file, same digest."""

    kinds = frozenset(
        {
            K.TAG_FILE_MISSING,
            K.ITEMS_UNREADABLE,
            K.ITEMS_ORDER,
            K.ITEM_FIELD_INVALID,
            K.ITEM_DISAGREES,
            K.ITEM_STORED_TWICE,
            K.ITEM_MISSING,
        }
    )

    def check(self, bundle: BundleModel, report: VerifyReport) -> None:
        if problem := _not_a_file(bundle, ITEMS, "the item record"):
            report.findings.append(problem)
            return
        if bundle.payload.fast_items is not None:  # the streamed check found them all in step
            report.items = bundle.payload.fast_items
            return
        index = bundle.payload.index(bundle)
        if not index.items_read:
            return  # over its cap, or unreadable (said where it was read)
        report.findings.extend(index.item_findings)
        report.items = index.items
        if not index.manifest_read:
            return
        for line, item_id, stored, sha, digest in index.query(
            "SELECT i.line, i.id, i.stored_as, i.sha256, m.digest FROM i LEFT JOIN m ON m.path = i.stored_as"
            " WHERE m.digest IS NULL OR i.sha256 IS NOT m.digest ORDER BY i.line"
        ):
            where = f"item {item_id} ({ITEMS}:{line})"
            if digest is None:
                report.add(K.ITEM_DISAGREES, where, f"stored_as '{stored}' is not in {bagit.MANIFEST}")
            else:
                report.add(
                    K.ITEM_DISAGREES,
                    where,
                    f"sha256 of '{stored}' differs from the manifest",
                    digest,
                    str(sha),
                )
        for line, item_id, stored in index.query(
            "SELECT a.line, a.id, a.stored_as FROM i AS a WHERE EXISTS"
            " (SELECT 1 FROM i AS b WHERE b.stored_as = a.stored_as AND b.line < a.line) ORDER BY a.line"
        ):
            report.add(
                K.ITEM_STORED_TWICE, f"item {item_id} ({ITEMS}:{line})", f"'{stored}' is another item's too"
            )
        for (rel,) in index.query(
            "SELECT path FROM m WHERE NOT EXISTS (SELECT 1 FROM i WHERE i.stored_as = m.path) ORDER BY line"
        ):
            report.add(K.ITEM_MISSING, rel, f"payload file has no item in {ITEMS}")


# File-level problems of the custody logs, which the model-level rules report.
_SAID_ABOVE = frozenset({"custody-file-not-regular", "custody-too-large", "custody-continuation-missing"})


class Custody:
    """Both custody logs are there and regular; every link, signature and number holds (verify_chain);
    every event names this bundle and is signed by a key the verifier trusts; `sealed` is the last
    line of custody.jsonl, by the signer, over this manifest."""

    kinds = frozenset(
        {
            K.TAG_FILE_MISSING,
            K.CUSTODY_MISSING,
            K.CUSTODY_UNREADABLE,
            K.CUSTODY_LINK_BROKEN,
            K.CUSTODY_SEQ_GAP,
            K.CUSTODY_SIGNATURE_INVALID,
            K.CUSTODY_NOT_CANONICAL,
            K.CUSTODY_WRONG_BUNDLE,
            K.CUSTODY_EVENT_UNTRUSTED,
            K.CUSTODY_LINE_ENDING,
            K.CUSTODY_NOT_UTF8,
            K.CUSTODY_FIELD_INVALID,
            K.CUSTODY_LINE_PARTIAL,
            K.SEALED_EVENT_MISSING,
            K.SEALED_EVENT_REPEATED,
            K.SEALED_EVENT_MISPLACED,
            K.SEALED_EVENT_MISMATCH,
            K.SEALED_BY_OTHER_KEY,
        }
    )

    def check(self, bundle: BundleModel, report: VerifyReport) -> None:
        readable = True
        for rel in (CUSTODY, CONTINUATION):
            entry = bundle.entries.get(rel)
            if entry is None:
                if rel == CONTINUATION and not bundle.incomplete:
                    report.add(
                        K.TAG_FILE_MISSING,
                        rel,
                        "the custody log after the seal is missing (sealing writes it)",
                    )
            elif entry.kind != "file":
                report.add(K.TAG_FILE_MISSING, rel, f"a {entry.kind}, not a regular file: not read")
                readable = False
            elif not bundle.within_cap(rel):
                readable = False
        # verify_chain never follows or reads a log that is not a small regular file; what it
        # says of such a file the checks above and RegularFilesOnly/TagFileCaps say already. The
        # lines of the readable log still go to CustodyTail: a receipt can show the tail is gone.
        findings, lines = verify_chain(bundle.path)
        report.findings.extend(f for f in findings if f.kind not in _SAID_ABOVE)
        if not readable:
            report.custody_lines = lines
            return
        report.custody_lines = lines
        report.custody_events = len(lines)
        report.custody_after_seal = sum(1 for line in lines if line.file == CONTINUATION)
        self._sealed(bundle, lines, report)
        bundle_id = bundle.info.get("Sealbox-Bundle-Id")
        actors: dict[str, dict[str, Any]] = {}
        for line in lines:
            ev = line.event or {}
            if not line.event:
                continue
            if bundle_id and ev.get("bundle") != bundle_id:
                report.add(
                    K.CUSTODY_WRONG_BUNDLE,
                    line.where,
                    "event names another bundle",
                    bundle_id,
                    str(ev.get("bundle")),
                )
            actor: dict[str, Any] = ev["actor"] if isinstance(ev.get("actor"), dict) else {}
            key = actor.get("key")
            key_text = key if isinstance(key, str) else None
            trusted = key_text is not None and key_text in bundle.trusted
            if key_text is None or (not trusted and key_text != report.signer):
                # Events by the bundle's own signer are covered by signer-untrusted.
                report.add(
                    K.CUSTODY_EVENT_UNTRUSTED,
                    line.where,
                    f"'{ev.get('event')}' event signed by {key_text or 'no key'}, which is not trusted",
                    "a fingerprint given with --trust or in the trusted keys",
                    str(key),
                )
            if key_text is not None and key_text not in actors:
                actors[key_text] = {
                    "fingerprint": key_text,
                    "name": _text(actor.get("name")),
                    "role": _text(actor.get("role")),
                    "organization": _text(actor.get("organization")),
                    "trusted": trusted,
                }
        report.actors = list(actors.values())

    @staticmethod
    def _sealed(bundle: BundleModel, lines: list[ChainLine], report: VerifyReport) -> None:
        sealed = [line for line in lines if line.event and line.event.get("event") == "sealed"]
        custody_lines = [line for line in lines if line.file == CUSTODY]
        if not sealed:
            report.add(K.SEALED_EVENT_MISSING, CUSTODY, "no 'sealed' event: the bundle was never sealed")
            return
        if len(sealed) > 1:
            report.add(K.SEALED_EVENT_REPEATED, sealed[1].where, "more than one 'sealed' event")
        line = sealed[0]
        event = line.event or {}
        if custody_lines and line is not custody_lines[-1]:
            report.add(
                K.SEALED_EVENT_MISPLACED, line.where, "'sealed' must be the last line of custody.jsonl"
            )
        details: dict[str, Any] = event["details"] if isinstance(event.get("details"), dict) else {}
        if bundle.within_cap(bagit.MANIFEST):
            try:
                actual = sha256_file(bundle.path / bagit.MANIFEST)
            except OSError:
                actual = None
            if actual is not None and details.get("manifest_sha256") != actual:
                report.add(
                    K.SEALED_EVENT_MISMATCH,
                    line.where,
                    f"the 'sealed' event names another {bagit.MANIFEST}",
                    actual,
                    str(details.get("manifest_sha256")),
                )
        actor: dict[str, Any] = event["actor"] if isinstance(event.get("actor"), dict) else {}
        key = actor.get("key")
        if report.signer and key != report.signer:
            report.add(
                K.SEALED_BY_OTHER_KEY,
                line.where,
                "'sealed' was not signed by the bundle's signer",
                report.signer,
                str(key),
            )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


class Transfers:
    """Two-party transfers (SPEC §4.2): each `accepted` countersigns one earlier `transferred`
    event by its hash and is signed by the receiver it names; §4.2 details have their shape.
    Transfers nobody accepted yet are noted, not findings: the receiver may still be on the way."""

    kinds = frozenset(
        {
            K.CUSTODY_DETAILS_INVALID,
            K.CUSTODY_ACCEPT_UNMATCHED,
            K.CUSTODY_ACCEPT_WRONG_KEY,
            K.CUSTODY_ACCEPT_REPEATED,
        }
    )

    def check(self, bundle: BundleModel, report: VerifyReport) -> None:
        if report.custody_lines is None:
            return
        found, findings = check_transfers(report.custody_lines)
        report.findings.extend(findings)
        note = open_transfers_note(found)
        if note:
            report.notes.append(note)


class CustodyTail:
    """The custody tail against its witnesses: events removed from the end of the append-only log
    cannot be seen in the log itself, only against receipts (the key store's, or --receipt)."""

    kinds = frozenset(
        {
            K.CUSTODY_TAIL_TRUNCATED,
            K.CUSTODY_RECEIPT_MISMATCH,
            K.RECEIPT_MALFORMED,
            K.RECEIPT_INVALID,
            K.RECEIPT_UNTRUSTED,
            K.RECEIPT_WRONG_BUNDLE,
        }
    )

    def check(self, bundle: BundleModel, report: VerifyReport) -> None:
        if report.custody_lines is None:
            report.notes.append("custody after seal: not anchored (the custody logs could not be read)")
            return
        findings, summary = check_custody_anchors(
            bundle.path,
            bundle.info.get("Sealbox-Bundle-Id", ""),
            report.custody_lines,
            bundle.store,
            set(bundle.trusted),
            bundle.receipts,
        )
        report.findings.extend(findings)
        report.notes.append(summary)


class Timestamp:
    """The RFC 3161 timestamp over tagmanifest-sha256.txt, when there is one: it counts only when its
    signature, imprint and certificate chain all verify (manifest.signing.timestamp)."""

    kinds = frozenset(
        {
            K.TIMESTAMP_UNREADABLE,
            K.TIMESTAMP_MISMATCH,
            K.TIMESTAMP_INVALID,
            K.TIMESTAMP_ORPHAN,
            K.TIMESTAMP_CA_UNREADABLE,
        }
    )

    def check(self, bundle: BundleModel, report: VerifyReport) -> None:
        entry = bundle.entries.get(bagit.TSR)
        if entry is None:
            report.notes.append("timestamp: none (no trusted time beyond the signer's own clock)")
            return
        if entry.kind == "directory":
            report.add(K.TIMESTAMP_UNREADABLE, bagit.TSR, "a directory where the timestamp token should be")
            return
        if entry.kind != "file" or not bundle.within_cap(bagit.TSR):
            return  # RegularFilesOnly / TagFileCaps name it
        if bundle.regular(bagit.TAGMANIFEST) is None or not bundle.within_cap(bagit.TAGMANIFEST):
            report.add(K.TIMESTAMP_ORPHAN, bagit.TSR, f"a timestamp without a readable {bagit.TAGMANIFEST}")
            return
        findings, note = timestamp_status(bundle.path, bundle.tsa_ca, bundle.store)
        report.findings.extend(findings)
        if note:
            report.notes.append(note)


class Previous:
    """With --previous: this bundle names that one as the bundle it follows up."""

    kinds = frozenset({K.PREVIOUS_BUNDLE_UNLINKED, K.PREVIOUS_BUNDLE_MISMATCH})

    def check(self, bundle: BundleModel, report: VerifyReport) -> None:
        if bundle.previous is None:
            return
        from manifest.errors import NotABundleError

        try:
            expected = tagmanifest_digest(bundle.previous)
        except OSError as exc:
            raise NotABundleError(
                f"--previous {bundle.previous}: cannot read its {bagit.TAGMANIFEST}: {exc.strerror}"
            ) from None
        found = bundle.info.get(PREVIOUS_FIELD)
        if found is None:
            report.add(
                K.PREVIOUS_BUNDLE_UNLINKED, "bag-info.txt", f"no {PREVIOUS_FIELD}: not a follow-up bundle"
            )
        elif found != expected:
            report.add(
                K.PREVIOUS_BUNDLE_MISMATCH,
                "bag-info.txt",
                f"{PREVIOUS_FIELD} is not the SHA-256 of {bundle.previous.name}/{bagit.TAGMANIFEST}",
                expected,
                found,
            )


# The one registry, in the order findings are reported. CustodyTail is where the custody receipts
# (check_custody_anchors) plug in; Timestamp is where the verified-timestamp status goes.
RULES: tuple[Rule, ...] = (
    NeverSealed(),
    RegularFilesOnly(),
    TagFileCaps(),
    Declarations(),
    TagManifest(),
    Signer(),
    Signatures(),
    Payload(),
    Items(),
    Custody(),
    Transfers(),
    CustodyTail(),
    Timestamp(),
    Previous(),
)
