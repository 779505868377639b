"""One object in, one object out: every upload carries its SHA-256 (the server refuses bytes that
do not match) and its lock; every download is hashed as it streams, never held whole."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from manifest.vault.location import VaultLocation

CHUNK = 1 << 20


@dataclass(frozen=True)
class Lock:
    """Retention and legal hold as set on an object version."""

    mode: str
    retain_until: datetime
    legal_hold: bool = False

    def put_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"ObjectLockMode": self.mode, "ObjectLockRetainUntilDate": self.retain_until}
        if self.legal_hold:
            args["ObjectLockLegalHoldStatus"] = "ON"
        return args


def b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def composite(part_hexes: list[str]) -> str:
    """S3's checksum of a multipart object: SHA-256 over the parts' digests, then `-N`."""
    joined = b"".join(bytes.fromhex(h) for h in part_hexes)
    return f"{base64.b64encode(hashlib.sha256(joined).digest()).decode()}-{len(part_hexes)}"


def put_bytes(client: Any, location: VaultLocation, key: str, data: bytes, sha_hex: str, lock: Lock) -> str:
    """PUT with ChecksumSHA256 and the lock in the same request; returns the version id."""
    response = client.put_object(
        Bucket=location.bucket, Key=key, Body=data, ChecksumSHA256=b64(sha_hex), **lock.put_args()
    )
    return str(response["VersionId"])


def put_file(
    client: Any, location: VaultLocation, key: str, path: Path, size: int, sha_hex: str, lock: Lock
) -> str:
    """put_bytes for a file streamed from disk (never held whole in memory)."""
    with open(path, "rb") as body:
        response = client.put_object(
            Bucket=location.bucket,
            Key=key,
            Body=body,
            ContentLength=size,
            ChecksumSHA256=b64(sha_hex),
            **lock.put_args(),
        )
    return str(response["VersionId"])


@dataclass(frozen=True)
class Fetched:
    sha256: str
    size: int
    mode: str | None
    retain_until: datetime | None
    legal_hold: str | None


def stream_get(client: Any, bucket: str, key: str, version: str, sink: IO[bytes] | None = None) -> Fetched:
    """GET one exact version, hashing (and optionally writing) it chunk by chunk."""
    response = client.get_object(Bucket=bucket, Key=key, VersionId=version)
    digest = hashlib.sha256()
    size = 0
    body = response["Body"]
    try:
        for chunk in body.iter_chunks(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if sink is not None:
                sink.write(chunk)
    finally:
        body.close()
    return Fetched(
        digest.hexdigest(),
        size,
        response.get("ObjectLockMode"),
        response.get("ObjectLockRetainUntilDate"),
        response.get("ObjectLockLegalHoldStatus"),
    )


def get_small(client: Any, bucket: str, key: str, version: str | None = None) -> bytes:
    args = {"VersionId": version} if version else {}
    body = client.get_object(Bucket=bucket, Key=key, **args)["Body"]
    try:
        return bytes(body.read())
    finally:
        body.close()
