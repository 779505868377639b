"""`vault pull`: the exact stored versions into a local directory, then a full local verify."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

from manifest.errors import UsageError
from manifest.signing.custody import CONTINUATION
from manifest.vault.remote import IndexEntry, RemoteReport, verify_remote

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.signing.keys import KeyStore
    from manifest.vault.location import VaultLocation
    from manifest.verify import VerifyReport

PARTIAL = ".pulling"


def pull(
    location: VaultLocation,
    case: str,
    bundle: str,
    out: Path,
    trusted: set[str] | None = None,
    *,
    store: KeyStore | None = None,
    client: Any | None = None,
) -> tuple[Path, RemoteReport, VerifyReport]:
    """Download CASE/BUNDLE into OUT/BUNDLE (built as OUT/BUNDLE.pulling, renamed when complete),
    checking every object as it streams, then verify the local copy."""
    from manifest.verify import verify_bundle

    target = out / bundle
    partial = out / (bundle + PARTIAL)
    if target.exists():
        raise UsageError(f"{target} already exists", "pull into another --out directory")
    if partial.exists():
        raise UsageError(f"{partial} exists from an earlier pull", "remove it, then pull again")
    out.mkdir(parents=True, exist_ok=True)

    def sink(entry: IndexEntry) -> IO[bytes]:
        path = partial / entry.path
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "wb")

    remote = verify_remote(
        location, case, bundle, trusted, store=store, client=client, payload_sink=sink, keep=partial
    )
    for path in partial.rglob("*"):
        if path.is_file() and path != partial / CONTINUATION:
            path.chmod(0o444)
    partial.rename(target)
    return target, remote, verify_bundle(target, set(trusted or ()), store=store)
