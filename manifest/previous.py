"""Incremental bundles (SPEC §2 `Sealbox-Previous-Bundle`): what a previous sealed bundle holds.

A follow-up collection of the same sources copies only files that are new or changed since the
previous bundle; an unchanged file (same size, mtime, ctime, inode and device) is recorded as a
`skipped` item naming the previous bundle's item. The new bundle's bag-info carries the SHA-256
of the previous bundle's tagmanifest-sha256.txt, which chains the two under their signatures.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from manifest.errors import KeyError_, UsageError
from manifest.format import bagit
from manifest.format.bagit import INCOMPLETE
from manifest.format.items import iter_items, original_path
from manifest.hashing import sha256_file
from manifest.signing.keys import load_public_pem, verify_signature

if TYPE_CHECKING:
    from pathlib import Path

PREVIOUS_FIELD = "Sealbox-Previous-Bundle"

# original path -> size, mtime_ns, ctime_ns, inode, device, item id in the previous bundle
Seen = dict[bytes, tuple[int, int, int, int, int, str]]


@dataclass(frozen=True)
class PreviousBundle:
    name: str
    tagmanifest_sha256: str
    files: Seen = field(repr=False)

    def unchanged(self, original: bytes, state: tuple[int, int, int, int, int]) -> str | None:
        """The note for a file the previous bundle holds as it is now (`state`: size, mtime_ns,
        ctime_ns, inode, device), else None."""
        seen = self.files.get(original)
        if seen is None or seen[:5] != state:
            return None
        return (
            f"unchanged since the previous bundle {self.name}: same size, mtime, ctime and inode "
            f"as its item {seen[5]}"
        )


def tagmanifest_digest(bundle: Path) -> str:
    """What a following bundle records in `Sealbox-Previous-Bundle`."""
    return hashlib.sha256((bundle / bagit.TAGMANIFEST).read_bytes()).hexdigest()


def load_previous(bundle: Path) -> PreviousBundle:
    """A sealed bundle whose signature and items.jsonl check out, indexed by original path.
    Memory grows with its number of files (about 200 bytes each)."""
    what = f"--previous {bundle}"
    hint = "give the directory of the previous sealed bundle"
    if not bundle.is_dir() or bundle.name.endswith(INCOMPLETE):
        raise UsageError(f"{what} is not a sealed bundle", hint)
    try:
        data = (bundle / bagit.TAGMANIFEST).read_bytes()
        public = load_public_pem((bundle / "keys/signer.pub.pem").read_bytes(), "keys/signer.pub.pem")
        signature = (bundle / bagit.SIG).read_bytes()
    except KeyError_ as exc:
        raise UsageError(f"{what}: {exc.message}", hint) from None
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {exc.filename}: {exc.strerror}", hint) from None
    check = f"run `sealbox verify {bundle}`"
    if not verify_signature(public, signature, data):
        raise UsageError(f"{what}: its tagmanifest signature is invalid", check)
    listed = {rel: digest for _n, rel, digest in bagit.parse_manifest(data)}
    items = bundle / "metadata/items.jsonl"
    if listed.get("metadata/items.jsonl") != sha256_file(items):
        raise UsageError(f"{what}: metadata/items.jsonl differs from its tagmanifest", check)
    files: Seen = {}
    for item in iter_items(items):
        if item.get("kind") == "file" and item.get("stored_as"):
            state = (item["size"], item["mtime_ns"], item["ctime_ns"], item["inode"], item["device"])
            files[original_path(item)] = (*state, str(item["id"]))
    return PreviousBundle(bundle.name, hashlib.sha256(data).hexdigest(), files)
