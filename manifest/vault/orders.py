"""The vault as the fleet's channel (FORMAT.md §11.4): orders in, status documents out.

`<root>orders/<host id>/<issued>-<order id>.json` and `<root>orders/@<group>/...` hold orders
(issued as YYYYMMDDTHHMMSSZ, so a listing can start after the oldest order still valid);
`<root>status/<host id>/<order id>.json` the host's signed status of each order (a new version
per step) and `<root>status/<host id>/heartbeat.json` its heartbeat. The bucket's Object Lock
keeps every version: what a host was told and what it answered cannot be rewritten."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from manifest.format.timefmt import compact_utc
from manifest.vault.client import raise_for
from manifest.vault.errors import VaultError
from manifest.vault.objects import b64

if TYPE_CHECKING:
    from manifest.vault.location import VaultLocation

ORDERS = "orders/"
STATUS = "status/"
HEARTBEAT = "heartbeat.json"
GROUP_MARK = "@"


def orders_prefix(location: VaultLocation, target: str) -> str:
    """Where orders for a host id, or for `@group`, are put."""
    return f"{location.root()}{ORDERS}{target}/"


def order_key(location: VaultLocation, target: str, issued_ns: int, order_id: str) -> str:
    return f"{orders_prefix(location, target)}{compact_utc(issued_ns)}-{order_id}.json"


def status_prefix(location: VaultLocation, host: str = "") -> str:
    return f"{location.root()}{STATUS}{host}/" if host else f"{location.root()}{STATUS}"


def status_key(location: VaultLocation, host: str, name: str) -> str:
    return f"{status_prefix(location, host)}{name}.json"


def heartbeat_key(location: VaultLocation, host: str) -> str:
    return f"{status_prefix(location, host)}{HEARTBEAT}"


@dataclass(frozen=True)
class Listed:
    key: str
    version: str  # the ETag: a new version of the same key lists as another object
    size: int


def put_document(client: Any, location: VaultLocation, key: str, data: bytes) -> str:
    """PUT a small document with its SHA-256 (the bucket's default retention locks it)."""
    sha = hashlib.sha256(data).hexdigest()
    try:
        response = client.put_object(
            Bucket=location.bucket,
            Key=key,
            Body=data,
            ChecksumSHA256=b64(sha),
            ContentType="application/json",
        )
    except Exception as exc:
        raise_for(exc, location, f"storing {key}", client)
    return str(response.get("VersionId") or "")


def list_documents(client: Any, location: VaultLocation, prefix: str, start_after: str = "") -> list[Listed]:
    """Every current object under `prefix` (after `start_after`), in key order."""
    found: list[Listed] = []
    args: dict[str, Any] = {"Bucket": location.bucket, "Prefix": prefix}
    if start_after:
        args["StartAfter"] = start_after
    try:
        while True:
            page = client.list_objects_v2(**args)
            found += [
                Listed(str(o["Key"]), str(o.get("ETag", "")), int(o.get("Size", 0)))
                for o in page.get("Contents", [])
            ]
            if not page.get("IsTruncated"):
                return found
            args["ContinuationToken"] = page["NextContinuationToken"]
    except Exception as exc:
        raise_for(exc, location, f"listing {prefix}", client)


def list_children(client: Any, location: VaultLocation, prefix: str) -> list[str]:
    """The names one level below `prefix` (e.g. the host ids under status/)."""
    names: list[str] = []
    args: dict[str, Any] = {"Bucket": location.bucket, "Prefix": prefix, "Delimiter": "/"}
    try:
        while True:
            page = client.list_objects_v2(**args)
            names += [str(p["Prefix"])[len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
            if not page.get("IsTruncated"):
                return names
            args["ContinuationToken"] = page["NextContinuationToken"]
    except Exception as exc:
        raise_for(exc, location, f"listing {prefix}", client)


def get_document(client: Any, location: VaultLocation, key: str, max_bytes: int) -> bytes:
    """A small document; one larger than `max_bytes` is not read (VaultError naming it)."""
    try:
        response = client.get_object(Bucket=location.bucket, Key=key)
    except Exception as exc:
        raise_for(exc, location, f"reading {key}", client)
    body = response["Body"]
    try:
        if int(response.get("ContentLength") or 0) > max_bytes:
            raise VaultError(f"{key} is {response['ContentLength']} bytes, more than {max_bytes}")
        return bytes(body.read(max_bytes + 1))
    finally:
        body.close()
