"""`vault push`: a verified bundle into the vault, resumable, then a signed `stored` event.

Resuming needs no state of its own: what the bucket already holds under the bundle's prefix,
with the SHA-256 the server checked on upload, is what need not be sent again; a multipart upload
cut midway keeps its finished parts. Keys are fixed by the bundle's paths, so nothing is ever
stored twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from manifest.errors import BundleError, NotABundleError, SealboxError
from manifest.format import bagit
from manifest.format.bagit import parse_bag_info, parse_manifest
from manifest.format.canonical import canonical_bytes
from manifest.osio.crashpoint import crash_point
from manifest.signing.custody import CONTINUATION, append_event
from manifest.vault.bucket import Retention, check_bucket
from manifest.vault.client import endpoint_url, http_status, make_client, raise_for
from manifest.vault.errors import BundleNotVerified, VaultError, VaultUnreachable
from manifest.vault.location import BAG, VaultLocation
from manifest.vault.objects import Lock, b64, composite, put_bytes, put_file
from manifest.vault.pool import ordered_map
from manifest.vault.witness import sync_witness

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from pathlib import Path

    from manifest.signing.keys import KeyStore, Signer

WORKERS = 8
MULTIPART_OVER = 64 << 20
PART = 8 << 20  # WORKERS x PART bytes in memory at most
# Files up to this size go up as bytes; larger ones stream from disk (a 50,000-file bundle's
# metadata is over 100 MB, and eight of them read whole at once made most of push's peak).
IN_MEMORY = 1 << 20


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of the sealed bundle as it goes to the vault."""

    rel: str
    size: int
    sha256: str | None  # from the manifests when listed there


@dataclass(frozen=True, slots=True)
class Stored:
    """One object version in the vault; short-lived (its index line is what a push keeps)."""

    rel: str
    version: str
    sha256: str
    size: int
    checksum: str
    uploaded: bool
    retain_until: datetime


@dataclass
class PushResult:
    """What a push stored, kept as counts and the index's bytes (not one record per object:
    50,000 files must not mean 50,000 Python objects held to the end)."""

    location: VaultLocation
    case: str
    bundle: str
    prefix: str
    objects: int = 0
    uploaded: int = 0
    nbytes: int = 0
    retain_until: datetime | None = None
    index: bytearray = field(default_factory=bytearray)
    event: dict[str, Any] | None = None
    already_stored: bool = False

    def add(self, stored: Stored) -> None:
        """Count one stored object and append its index line (objects arrive in path order)."""
        self.objects += 1
        self.uploaded += stored.uploaded
        self.nbytes += stored.size
        if self.retain_until is None or stored.retain_until < self.retain_until:
            self.retain_until = stored.retain_until
        self.index += index_line(stored)


def sealed_entries(bundle_dir: Path) -> list[Entry]:
    """Every file of the bundle but the live continuation log, with the digests the manifests give."""
    digests: dict[str, str] = {}
    for name in (bagit.MANIFEST, bagit.TAGMANIFEST):
        path = bundle_dir / name
        if path.is_file():
            for _, rel, digest in parse_manifest(path.read_bytes()):
                if digest:
                    digests[rel] = digest
    if (bundle_dir / bagit.TAGMANIFEST).is_file():
        digests[bagit.TAGMANIFEST] = file_sha256(bundle_dir / bagit.TAGMANIFEST)
    out = []
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(bundle_dir / rel_dir if rel_dir else bundle_dir) as it:
            for entry in it:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                elif entry.is_file(follow_symlinks=False) and rel != CONTINUATION:
                    out.append(Entry(rel, entry.stat(follow_symlinks=False).st_size, digests.get(rel)))
    return sorted(out, key=lambda e: e.rel)


def bundle_case(bundle_dir: Path) -> str:
    info_file = bundle_dir / "bag-info.txt"
    if not info_file.is_file():
        raise NotABundleError(f"{bundle_dir} is not a sealbox bundle (no bag-info.txt)")
    case = parse_bag_info(info_file.read_bytes()).get("External-Identifier", "")
    if not case or "/" in case:
        raise BundleError(f"{bundle_dir} names no usable case in bag-info.txt External-Identifier")
    return case


def _existing(client: Any, location: VaultLocation, prefix: str) -> dict[str, dict[str, Any]]:
    """Latest version of every object under `prefix`: key -> {version, size}."""
    out: dict[str, dict[str, Any]] = {}
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=location.bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            if v.get("IsLatest"):
                out[v["Key"]] = {"version": v["VersionId"], "size": v["Size"]}
    return out


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _part_hashes(path: Path, size: int) -> tuple[list[str], str]:
    digests, whole = [], hashlib.sha256()
    with open(path, "rb") as f:
        for _ in range(0, size, PART):
            data = f.read(PART)
            digests.append(hashlib.sha256(data).hexdigest())
            whole.update(data)
    return digests, whole.hexdigest()


class _Pusher:
    def __init__(
        self, client: Any, location: VaultLocation, bundle_dir: Path, prefix: str, lock: Lock
    ) -> None:
        self.client, self.location, self.bundle_dir, self.prefix, self.lock = (
            client,
            location,
            bundle_dir,
            prefix,
            lock,
        )
        self.existing = _existing(client, location, prefix + BAG)
        self.uploads = self._open_uploads()

    def _open_uploads(self) -> dict[str, str]:
        """Unfinished multipart uploads of this bundle: key -> upload id (one per key kept)."""
        out: dict[str, str] = {}
        try:
            paginator = self.client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=self.prefix + BAG):
                for upload in page.get("Uploads", []):
                    out.setdefault(upload["Key"], upload["UploadId"])
        except Exception as exc:
            raise_for(exc, self.location, "listing unfinished uploads", self.client)
        return out

    def one(self, entry: Entry) -> Stored:
        key = self.prefix + BAG + entry.rel
        path = self.bundle_dir / entry.rel
        try:
            there = self.existing.get(key)
            if there is not None and there["size"] == entry.size:
                kept = self._check_existing(key, there["version"], entry, path)
                if kept is not None:
                    return kept
            if entry.size > MULTIPART_OVER:
                return self._multipart(key, entry, path)
            if entry.size > IN_MEMORY:
                digest = entry.sha256 or file_sha256(path)
                version = put_file(self.client, self.location, key, path, entry.size, digest, self.lock)
                size = entry.size
            else:
                data = path.read_bytes()
                digest = entry.sha256 or hashlib.sha256(data).hexdigest()
                version = put_bytes(self.client, self.location, key, data, digest, self.lock)
                size = len(data)
            return Stored(entry.rel, version, digest, size, b64(digest), True, self.lock.retain_until)
        except (VaultError, BundleError):
            raise
        except Exception as exc:
            if _code(exc) in ("BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"):
                raise BundleError(
                    f"{entry.rel} no longer matches its manifest hash: the vault refused it",
                    "run `sealbox verify` on the bundle",
                ) from exc
            raise_for(exc, self.location, f"storing {entry.rel}", self.client)

    def _check_existing(self, key: str, version: str, entry: Entry, path: Path) -> Stored | None:
        head = self.client.head_object(
            Bucket=self.location.bucket, Key=key, VersionId=version, ChecksumMode="ENABLED"
        )
        checksum = head.get("ChecksumSHA256") or ""
        if entry.size > MULTIPART_OVER:
            parts, digest = _part_hashes(path, entry.size)
            if entry.sha256 and digest != entry.sha256:
                raise BundleError(f"{entry.rel} no longer matches its manifest hash", "run `sealbox verify`")
            want = composite(parts)
        else:
            digest = entry.sha256 or file_sha256(path)
            want = b64(digest)
        if checksum != want or head.get("ObjectLockMode") != self.lock.mode:
            return None
        until = self._retained(key, version, head.get("ObjectLockRetainUntilDate"))
        return Stored(entry.rel, version, digest, entry.size, checksum, False, until)

    def _retained(self, key: str, version: str, until: datetime | None) -> datetime:
        """The object's retain-until, extended to this push's when it is earlier: an object (or a
        multipart upload) kept from a cut push has the date that push computed. Extending
        retention is always allowed."""
        if until is None or until < self.lock.retain_until:
            self.client.put_object_retention(
                Bucket=self.location.bucket,
                Key=key,
                VersionId=version,
                Retention={"Mode": self.lock.mode, "RetainUntilDate": self.lock.retain_until},
            )
            until = self.lock.retain_until
        return until

    def _multipart(self, key: str, entry: Entry, path: Path) -> Stored:
        bucket = self.location.bucket
        upload_id = self.uploads.get(key)
        resumed = bool(upload_id)
        done: dict[int, dict[str, Any]] = {}
        if upload_id:
            for page in self.client.get_paginator("list_parts").paginate(
                Bucket=bucket, Key=key, UploadId=upload_id
            ):
                for part in page.get("Parts", []):
                    done[part["PartNumber"]] = part
        else:
            upload_id = self.client.create_multipart_upload(
                Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256", **self.lock.put_args()
            )["UploadId"]
        whole = hashlib.sha256()
        parts, hexes = [], []
        with open(path, "rb") as f:
            number = 0
            while True:
                data = f.read(PART)
                if not data and number > 0:
                    break
                number += 1
                whole.update(data)
                digest = hashlib.sha256(data).hexdigest()
                hexes.append(digest)
                have = done.get(number)
                if have and have.get("ChecksumSHA256") == b64(digest) and have.get("Size") == len(data):
                    etag = have["ETag"]
                else:
                    etag = self.client.upload_part(
                        Bucket=bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                        ChecksumSHA256=b64(digest),
                    )["ETag"]
                parts.append({"PartNumber": number, "ETag": etag, "ChecksumSHA256": b64(digest)})
                crash_point("vault-part-uploaded")
                if len(data) < PART:
                    break
        if entry.sha256 and whole.hexdigest() != entry.sha256:
            self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise BundleError(f"{entry.rel} no longer matches its manifest hash", "run `sealbox verify`")
        response = self.client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        version = str(response["VersionId"])
        until = self.lock.retain_until
        if resumed:  # the upload was created by a cut push, with that push's retain-until
            head = self.client.head_object(Bucket=bucket, Key=key, VersionId=version)
            until = self._retained(key, version, head.get("ObjectLockRetainUntilDate"))
        return Stored(entry.rel, version, whole.hexdigest(), entry.size, composite(hexes), True, until)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def index_line(o: Stored) -> bytes:
    """One line of the vault index: canonical JSON of path, version, SHA-256, size, checksum."""
    return (
        canonical_bytes(
            {"path": o.rel, "version": o.version, "sha256": o.sha256, "size": o.size, "checksum": o.checksum}
        )
        + b"\n"
    )


def _kept_index(client: Any, location: VaultLocation, key: str, sha_hex: str) -> str | None:
    """The version of an identical index a previous push stored (its key is its hash), if any."""
    try:
        head = client.head_object(Bucket=location.bucket, Key=key, ChecksumMode="ENABLED")
    except Exception as exc:
        if http_status(exc) == 404:
            return None
        raise
    return str(head["VersionId"]) if head.get("ChecksumSHA256") == b64(sha_hex) else None


def verify_locally(bundle_dir: Path, trusted: set[str], store: KeyStore | None) -> None:
    from manifest.verify import verify_bundle

    report = verify_bundle(bundle_dir, trusted, store=store)
    if not report.ok:
        raise BundleNotVerified(
            f"{bundle_dir} does not verify ({len(report.findings)} finding(s), first: "
            f"{report.findings[0].line()}): nothing was sent to the vault",
            f"see `sealbox verify {bundle_dir}`",
        )


def push(
    bundle_dir: Path,
    location: VaultLocation,
    signer: Signer,
    retention: Retention,
    *,
    legal_hold: bool = False,
    trusted: set[str] | None = None,
    store: KeyStore | None = None,
    client: Any | None = None,
    reason: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> PushResult:
    """Verify, upload what the vault lacks, index, append and witness the `stored` event."""
    case = bundle_case(bundle_dir)
    verify_locally(bundle_dir, set(trusted or ()), store)
    client = client or make_client()
    check_bucket(client, location)
    prefix = location.bundle_prefix(case, bundle_dir.name)
    lock = Lock(retention.mode, retention.until(), legal_hold)
    result = PushResult(location, case, bundle_dir.name, prefix)
    try:
        pusher = _Pusher(client, location, bundle_dir, prefix, lock)
    except VaultError:
        raise
    except Exception as exc:
        raise_for(exc, location, "listing what the vault holds", client)
    entries = sealed_entries(bundle_dir)  # sorted by path: the index is written in that order
    for n, stored in enumerate(ordered_map(pusher.one, entries, WORKERS), start=1):
        result.add(stored)
        if progress:
            progress(n, len(entries))
    del entries, pusher
    index = bytes(result.index)
    index_sha = hashlib.sha256(index).hexdigest()
    index_key = f"{prefix}index/{index_sha}.jsonl"
    try:
        index_version = _kept_index(client, location, index_key, index_sha) or put_bytes(
            client, location, index_key, index, index_sha, lock
        )
    except Exception as exc:
        raise_for(exc, location, "storing the vault index", client)
    retain_until = result.retain_until or lock.retain_until
    info = parse_bag_info((bundle_dir / "bag-info.txt").read_bytes())
    details = {
        "vault": location.url,
        "endpoint": endpoint_url(client),
        "key_prefix": prefix,
        "index_key": index_key,
        "index_version": index_version,
        "index_sha256": index_sha,
        "objects": result.objects,
        "bytes": result.nbytes,
        "uploaded": result.uploaded,
        "host": info.get("Sealbox-Host", ""),
        "retain_until": retain_until.isoformat(),
        "mode": lock.mode,
        "legal_hold": legal_hold,
    }
    result.event = append_event(
        bundle_dir, signer, "stored", details, reason or "stored in the evidence vault"
    )
    sync_witness(client, location, bundle_dir, case, Lock(lock.mode, retain_until, legal_hold))
    return result


def push_with_retries(
    attempts: int,
    run: Callable[[], PushResult],
    on_retry: Callable[[int, float, VaultUnreachable], None],
    sleep: Callable[[float], None] = time.sleep,
) -> PushResult:
    """Run a push; while the endpoint is unreachable, try again with doubling waits (1, 2, 4 s...).
    A push picks up where the last one stopped, so retrying never stores anything twice."""
    for attempt in range(1, attempts + 1):
        try:
            return run()
        except VaultUnreachable as exc:
            if attempt == attempts:
                raise VaultUnreachable(
                    f"{exc.message}; gave up after {attempts} attempts: nothing was claimed as stored",
                    "push again once the vault is reachable: it continues where it stopped",
                ) from exc
            wait = float(2 ** (attempt - 1))
            on_retry(attempt, wait, exc)
            sleep(wait)
    raise AssertionError("unreachable")


def summary(result: PushResult) -> str:
    details = (result.event or {}).get("details", {})
    return (
        f"STORED {result.bundle} in {result.location.bucket}/{result.prefix}: {result.objects} objects, "
        f"{result.nbytes} bytes ({result.uploaded} uploaded, "
        f"{result.objects - result.uploaded} already there), "
        f"{details.get('mode')} until {details.get('retain_until')}"
        + (", legal hold on" if details.get("legal_hold") else "")
        + f"; custody event {(result.event or {}).get('seq')} 'stored'"
    )


def as_json(result: PushResult) -> str:
    return json.dumps({"stored": True, "event": result.event}, sort_keys=True)


def push_or_defer(bundle_dir: Path, vault_url: str, signer: Signer, attempts: int = 2) -> tuple[bool, str]:
    """After `respond` sealed a bundle: store it in the vault now if it answers, else say how to
    push later. The sealed bundle stays as it is either way. Returns (stored, the line to print)."""
    from manifest.vault.bucket import parse_retention
    from manifest.vault.location import parse

    location = parse(vault_url)
    later = f"push it later with `sealbox vault push {bundle_dir} --vault {location.url}`"
    try:
        result = push_with_retries(
            attempts,
            lambda: push(bundle_dir, location, signer, parse_retention("7y", "compliance")),
            lambda _attempt, _wait, _exc: None,
        )
    except VaultUnreachable:
        return False, f"vault {location.url} is unreachable: the bundle is sealed locally only; {later}"
    except SealboxError as exc:
        return False, f"vault {location.url}: {exc.message}; the bundle is sealed locally; {later}"
    return True, summary(result)
