"""Bundle verification (SPEC §6): structure, declarations, signatures, payload, items, custody.

Every check runs and every problem becomes a Finding naming the exact file, line or item.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from manifest import bagit
from manifest.custody import CUSTODY, ChainLine, verify_chain
from manifest.errors import NotABundleError
from manifest.findings import Finding
from manifest.hashing import BatchCheck, check_batch, lstat_size, sha256_file, sha256_files
from manifest.items import parse_item
from manifest.keys import KeyStore, fingerprint, load_public_pem, verify_signature
from manifest.minisign import public_key_blob, read_small, verify_prehashed
from manifest.parallel import BackgroundMap, few_collections
from manifest.previous import PREVIOUS_FIELD, tagmanifest_digest
from manifest.receipts import check_custody_anchors
from manifest.timefmt import now_rfc3339
from manifest.timestamp import timestamp_status

if TYPE_CHECKING:
    from pathlib import Path

INCOMPLETE = ".incomplete"


@dataclass
class VerifyReport:
    """The verdict: `ok` only when there is no finding at all."""

    bundle: Path
    checked_at: str
    findings: list[Finding] = field(default_factory=list)
    signer: str | None = None
    signer_trusted: bool = False
    info: dict[str, str] = field(default_factory=dict)
    actors: list[dict[str, Any]] = field(default_factory=list)
    payload_files: int = 0
    payload_bytes: int = 0
    items: int = 0
    custody_events: int = 0
    # Plain lines on what could not be decided from the bundle alone (custody anchoring,
    # timestamp status, skipped key store entries): never a claim beyond what was checked.
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(
        self, kind: str, where: str, message: str, expected: str | None = None, found: str | None = None
    ) -> None:
        self.findings.append(Finding(kind, where, message, expected, found))

    def as_dict(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "verified": self.ok,
            "checked_at": self.checked_at,
            "signer": self.signer,
            "signer_trusted": self.signer_trusted,
            "bundle_id": self.info.get("Sealbox-Bundle-Id"),
            "case": self.info.get("External-Identifier"),
            "host": self.info.get("Sealbox-Host"),
            "payload_files": self.payload_files,
            "payload_bytes": self.payload_bytes,
            "items": self.items,
            "custody_events": self.custody_events,
            "actors": self.actors,
            "findings": [f.as_dict() for f in self.findings],
            "notes": self.notes,
        }


def _dangerous(rel: str) -> bool:
    """A manifest path that could point outside the bag (absolute, `..`, backslash, `~`)."""
    return (
        rel.startswith(("/", "~"))
        or "\\" in rel
        or (".." in rel and (rel == ".." or rel.startswith("../") or "/../" in rel or rel.endswith("/..")))
    )


def verify_bundle(
    path: Path,
    trusted: set[str] | None = None,
    *,
    store: KeyStore | None = None,
    workers: int | None = None,
    tsa_ca: Path | None = None,
    previous: Path | None = None,
    receipts: tuple[Path, ...] = (),
) -> VerifyReport:
    """Check a bundle against every rule of SPEC §6 and return all findings; with `previous`,
    also that the bundle follows up that one (its Sealbox-Previous-Bundle)."""
    if not path.exists():
        raise NotABundleError(f"{path} does not exist", "give the bundle directory")
    if not path.is_dir():
        raise NotABundleError(f"{path} is not a directory", "give the bundle directory")
    if not (path / "bagit.txt").is_file() and not (path / "metadata/items.jsonl").is_file():
        raise NotABundleError(f"{path} is not a sealbox bundle (no bagit.txt)")
    report = VerifyReport(path, now_rfc3339())
    store = store or KeyStore.default()
    trusted_fps = (
        set(trusted or ()) | store.trusted_fingerprints() | {k.identity.fingerprint for k in store.own_keys()}
    )
    if path.name.endswith(INCOMPLETE):
        report.add(
            "bundle-incomplete",
            path.name,
            "never sealed: the name still ends in .incomplete "
            "(to finish it, run the interrupted command again with --resume)",
        )
    _check_declarations(path, report)
    tagmanifest = _check_tagmanifest(path, report)
    _check_signatures(path, tagmanifest, trusted_fps, report)
    _check_payload_and_items(path, report, workers)
    _check_custody(path, report, trusted_fps, store, receipts)
    ts_findings, ts_note = timestamp_status(path, tsa_ca, store)
    report.findings.extend(ts_findings)
    if ts_note:
        report.notes.append(ts_note)
    report.notes.extend(w.line() for w in store.warnings)
    if previous is not None:
        _check_previous(report, previous)
    return report


def _check_previous(report: VerifyReport, previous: Path) -> None:
    try:
        expected = tagmanifest_digest(previous)
    except OSError as exc:
        raise NotABundleError(
            f"--previous {previous}: cannot read its {bagit.TAGMANIFEST}: {exc.strerror}"
        ) from None
    found = report.info.get(PREVIOUS_FIELD)
    if found is None:
        report.add("previous-bundle-unlinked", "bag-info.txt", f"no {PREVIOUS_FIELD}: not a follow-up bundle")
    elif found != expected:
        report.add(
            "previous-bundle-mismatch",
            "bag-info.txt",
            f"{PREVIOUS_FIELD} is not the SHA-256 of {previous.name}/{bagit.TAGMANIFEST}",
            expected,
            found,
        )


def _check_declarations(path: Path, report: VerifyReport) -> None:
    bagit_txt = path / "bagit.txt"
    if not bagit_txt.is_file():
        report.add("tag-file-missing", "bagit.txt", "the BagIt declaration is missing")
    elif bagit_txt.read_bytes() != bagit.BAGIT_TXT:
        report.add("bagit-declaration", "bagit.txt", "not a BagIt 1.0 UTF-8 declaration")
    info_path = path / "bag-info.txt"
    if not info_path.is_file():
        report.add("tag-file-missing", "bag-info.txt", "bag-info.txt is missing")
        return
    report.info = bagit.parse_bag_info(info_path.read_bytes())
    for label in (
        "External-Identifier",
        "Payload-Oxum",
        "Sealbox-Format",
        "Sealbox-Bundle-Id",
        "Sealbox-Signer-Fingerprint",
    ):
        if label not in report.info:
            report.add("bag-info-field-missing", "bag-info.txt", f"field {label} is missing")
    link = report.info.get(PREVIOUS_FIELD)
    if link is not None and not re.fullmatch("[0-9a-f]{64}", link):
        report.add("bag-info-field-invalid", "bag-info.txt", f"{PREVIOUS_FIELD} is not a SHA-256 in hex")
    if report.info.get("Sealbox-Format", "1") != "1":
        report.add(
            "format-unsupported",
            "bag-info.txt",
            "unknown Sealbox-Format",
            "1",
            report.info.get("Sealbox-Format"),
        )


def _read_manifest(path: Path, name: str, report: VerifyReport) -> dict[str, str] | None:
    file = path / name
    if not file.is_file():
        report.add("tag-file-missing", name, f"{name} is missing")
        return None
    entries: dict[str, str] = {}
    for number, rel, digest in bagit.parse_manifest(file.read_bytes()):
        where = f"{name}:{number}"
        if digest is None:
            report.add("manifest-line-malformed", where, "not '<sha256>  <path>'")
        elif _dangerous(rel):
            report.add("unsafe-path", where, f"path '{rel}' points outside the bag")
        elif rel in entries:
            report.add("manifest-duplicate", where, f"'{rel}' is listed twice")
        else:
            entries[rel] = digest
    return entries


def _check_tagmanifest(path: Path, report: VerifyReport) -> bytes | None:
    entries = _read_manifest(path, bagit.TAGMANIFEST, report)
    if entries is None:
        return None
    present = [rel for rel in entries if (path / rel).is_file()]
    found = dict(zip(present, sha256_files([path / rel for rel in present]), strict=True))
    for rel, digest in entries.items():
        if rel not in found:
            report.add("tag-file-missing", rel, "listed in tagmanifest-sha256.txt but missing")
        elif found[rel] != digest:
            report.add(
                "tag-file-changed", rel, "content differs from tagmanifest-sha256.txt", digest, found[rel]
            )
    for rel in bagit.tag_files(path):
        if rel not in entries:
            report.add("tag-file-unlisted", rel, "tag file not listed in tagmanifest-sha256.txt")
    for rel in ("manifest-sha256.txt", "bag-info.txt", "bagit.txt", "metadata/items.jsonl", CUSTODY):
        if (path / rel).is_file() and rel not in entries:
            report.add("tag-file-unprotected", rel, "required tag file is not covered by the signature")
    return (path / bagit.TAGMANIFEST).read_bytes()


def _check_signatures(path: Path, tagmanifest: bytes | None, trusted: set[str], report: VerifyReport) -> None:
    pem = path / "keys/signer.pub.pem"
    if not pem.is_file():
        report.add("signer-key-missing", "keys/signer.pub.pem", "the signer's public key is missing")
        return
    try:
        public = load_public_pem(pem.read_bytes(), "keys/signer.pub.pem")
    except Exception as exc:  # a damaged key file is a finding, not a crash
        report.add("signer-key-invalid", "keys/signer.pub.pem", str(exc))
        return
    fp = fingerprint(public)
    report.signer = fp
    declared = report.info.get("Sealbox-Signer-Fingerprint")
    if declared and declared != fp:
        report.add(
            "signer-mismatch",
            "bag-info.txt",
            "Sealbox-Signer-Fingerprint is not the key in keys/",
            fp,
            declared,
        )
    report.signer_trusted = fp in trusted
    if not report.signer_trusted:
        report.add(
            "signer-untrusted",
            "keys/signer.pub.pem",
            f"signed by {fp}, which is not trusted",
            "a fingerprint given with --trust or in the trusted keys",
            fp,
        )
    if tagmanifest is None:
        return
    sig_file = path / bagit.SIG
    if not sig_file.is_file():
        report.add("signature-missing", bagit.SIG, "the Ed25519 signature is missing")
    elif not verify_signature(public, sig_file.read_bytes(), tagmanifest):
        report.add(
            "signature-invalid",
            bagit.SIG,
            "signature does not match tagmanifest-sha256.txt for keys/signer.pub.pem",
        )
    mini_pub, mini_sig = path / "keys/signer.minisign.pub", path / bagit.MINISIG
    if not mini_sig.is_file() or not mini_pub.is_file():
        report.add("signature-missing", bagit.MINISIG, "the minisign signature or key is missing")
        return
    pub_bytes = read_small(mini_pub)
    problem = verify_prehashed(pub_bytes, read_small(mini_sig), tagmanifest)
    if problem:
        report.add("minisign-invalid", bagit.MINISIG, problem)
    else:
        pub_raw = public.public_bytes_raw()
        from manifest.minisign import key_id  # same key in both formats?

        blob = public_key_blob(pub_bytes) or b""
        if blob[10:] != pub_raw or blob[2:10] != key_id(pub_raw):
            report.add("signer-mismatch", "keys/signer.minisign.pub", "minisign key is not the PEM key")


# What verify's worker processes share with it, inherited at fork (never pickled).
_shared: dict[str, Any] = {}


def _share(path: Path, manifest: dict[str, str]) -> None:
    _shared.update(base=str(path) + "/", path=path, manifest=manifest, entries=list(manifest.items()))


def _hash_range(span: tuple[int, int]) -> BatchCheck:
    return check_batch(_shared["base"], _shared["entries"][span[0] : span[1]])


def _items_task() -> tuple[list[Finding], int]:
    """`_check_items` in a worker process: its findings and the number of items."""
    report = VerifyReport(_shared["path"], "")
    _check_items(_shared["path"], _shared["manifest"], report)
    return report.findings, report.items


def _check_payload_and_items(path: Path, report: VerifyReport, workers: int | None) -> None:
    """Payload files are hashed by worker processes while this process lists data/; another
    worker checks items.jsonl. Findings come out in the same order either way."""
    manifest = _read_manifest(path, bagit.MANIFEST, report) or {}
    workers = max(1, workers or os.cpu_count() or 1)
    base = str(path) + "/"
    # Manifest order, cut so every worker gets many batches: a few big files still spread.
    size = min(512, max(1, -(-len(manifest) // (workers * 16))))
    spans = [(i, min(i + size, len(manifest))) for i in range(0, len(manifest), size)]
    try:
        with (
            few_collections(),
            BackgroundMap(
                _hash_range,
                spans,
                workers,
                first=(_items_task, ()),
                initializer=_share,
                initargs=(path, manifest),
            ) as hashing,
        ):
            on_disk = _names_under(path, "data")
            checked = list(hashing.results())
            items_findings, items_count = hashing.first_result()
    finally:
        _shared.clear()
    missing = {rel for batch in checked for rel in batch.missing}
    for rel in sorted(on_disk - manifest.keys()):
        report.add("payload-unlisted", rel, "file in data/ that manifest-sha256.txt does not list")
    for rel in manifest:
        if rel in missing:
            report.add("payload-missing", rel, "listed in manifest-sha256.txt but missing")
    report.payload_files = sum(batch.files for batch in checked)
    report.payload_bytes = sum(batch.nbytes for batch in checked)
    unlisted = [base + rel for rel in on_disk - manifest.keys()]
    problems = [problem for batch in checked for problem in batch.problems]
    unreadable = [p for p in problems if p.kind == "unreadable"]
    disk_files = report.payload_files + len(unlisted) + len(unreadable)
    disk_bytes = (
        report.payload_bytes + sum(lstat_size(full) for full in unlisted) + sum(p.size for p in unreadable)
    )
    oxum = report.info.get("Payload-Oxum")
    if oxum and oxum != f"{disk_bytes}.{disk_files}":
        report.add(
            "payload-oxum",
            "bag-info.txt",
            "Payload-Oxum (bytes.files) does not match data/",
            oxum,
            f"{disk_bytes}.{disk_files}",
        )
    for problem in problems:
        if problem.kind == "unreadable":
            report.add("payload-unreadable", problem.rel, problem.detail)
        else:
            report.add(
                "payload-changed",
                problem.rel,
                "content differs from manifest-sha256.txt",
                problem.detail,
                problem.found,
            )
    report.findings.extend(items_findings)
    report.items = items_count


def _names_under(bag: Path, top: str) -> set[str]:
    """Every non-directory under bag/top as a bag-relative path (symlinks included), from the
    directory entries alone: no stat per file."""
    found: set[str] = set()
    stack = [top]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = list(os.scandir(bag / rel_dir))
        except OSError:
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                stack.append(rel)
            else:
                found.add(rel)
    return found


def _check_items(path: Path, manifest: dict[str, str], report: VerifyReport) -> None:
    items_file = path / "metadata/items.jsonl"
    if not items_file.is_file():
        report.add("tag-file-missing", "metadata/items.jsonl", "the item record is missing")
        return
    seen_payload: set[str] = set()
    last_id = ""
    with open(items_file, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                item = parse_item(raw)
                item_id = str(item["id"])
            except (ValueError, KeyError, TypeError):  # orjson.JSONDecodeError is a ValueError
                report.add("items-unreadable", f"metadata/items.jsonl:{number}", "not a JSON item with an id")
                continue
            report.items += 1
            if item_id <= last_id:
                report.add(
                    "items-order",
                    f"metadata/items.jsonl:{number}",
                    f"item {item_id} is out of order or repeated",
                )
            else:
                last_id = item_id
            stored = item.get("stored_as")
            if not stored:
                continue
            digest = manifest.get(stored)
            if digest is None:
                report.add(
                    "item-disagrees",
                    f"item {item_id} (metadata/items.jsonl:{number})",
                    f"stored_as '{stored}' is not in manifest-sha256.txt",
                )
            elif item.get("sha256") != digest:
                report.add(
                    "item-disagrees",
                    f"item {item_id} (metadata/items.jsonl:{number})",
                    f"sha256 of '{stored}' differs from the manifest",
                    digest,
                    str(item.get("sha256")),
                )
            seen_payload.add(stored)
    for rel in manifest:
        if rel not in seen_payload:
            report.add("item-missing", rel, "payload file has no item in metadata/items.jsonl")


def _check_custody(
    path: Path, report: VerifyReport, trusted: set[str], store: KeyStore, receipts: tuple[Path, ...]
) -> None:
    findings, lines = verify_chain(path)
    report.findings.extend(findings)
    report.custody_events = len(lines)
    _check_sealed_event(path, lines, report)
    bundle_id = report.info.get("Sealbox-Bundle-Id")
    anchor_findings, summary = check_custody_anchors(path, bundle_id or "", lines, store, trusted, receipts)
    report.findings.extend(anchor_findings)
    report.notes.append(summary)
    actors: dict[str, dict[str, Any]] = {}
    for line in lines:
        ev = line.event or {}
        if bundle_id and ev.get("bundle") != bundle_id:
            report.add(
                "custody-wrong-bundle",
                line.where,
                "event names another bundle",
                bundle_id,
                str(ev.get("bundle")),
            )
        actor = ev.get("actor") if isinstance(ev.get("actor"), dict) else None
        if actor and actor.get("key") not in actors:
            actors[str(actor.get("key"))] = {
                "fingerprint": actor.get("key"),
                "name": actor.get("name"),
                "role": actor.get("role"),
                "organization": actor.get("organization"),
                "trusted": actor.get("key") in trusted,
            }
    report.actors = list(actors.values())


def _check_sealed_event(path: Path, lines: list[ChainLine], report: VerifyReport) -> None:
    sealed = [line for line in lines if line.event and line.event.get("event") == "sealed"]
    custody_lines = [line for line in lines if line.file == CUSTODY]
    if not sealed:
        report.add("sealed-event-missing", CUSTODY, "no 'sealed' event: the bundle was never sealed")
        return
    if len(sealed) > 1:
        report.add("sealed-event-repeated", sealed[1].where, "more than one 'sealed' event")
    event = sealed[0]
    if custody_lines and event is not custody_lines[-1]:
        report.add("sealed-event-misplaced", event.where, "'sealed' must be the last line of custody.jsonl")
    details = (event.event or {}).get("details") or {}
    manifest = path / bagit.MANIFEST
    if manifest.is_file():
        actual = sha256_file(manifest)
        if details.get("manifest_sha256") != actual:
            report.add(
                "sealed-event-mismatch",
                event.where,
                "the 'sealed' event names another manifest-sha256.txt",
                actual,
                str(details.get("manifest_sha256")),
            )
    key = ((event.event or {}).get("actor") or {}).get("key")
    if report.signer and key != report.signer:
        report.add(
            "sealed-by-other-key",
            event.where,
            "'sealed' was not signed by the bundle's signer",
            report.signer,
            str(key),
        )
