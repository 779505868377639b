"""Where a bundle lives in the vault: `s3://BUCKET[/PREFIX]` and the key layout (FORMAT.md, Vault layout)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from manifest.errors import UsageError

ENV = "SEALBOX_VAULT"
# S3 bucket names: 3-63 lower-case letters, digits, dots and hyphens.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
BAG = "bag/"
CUSTODY = "custody/"
INDEX = "vault-index.jsonl"


@dataclass(frozen=True)
class VaultLocation:
    """A bucket and an optional key prefix (no leading or trailing slash)."""

    bucket: str
    prefix: str = ""

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def root(self) -> str:
        """The key prefix every case lives under ('' or 'PREFIX/')."""
        return f"{self.prefix}/" if self.prefix else ""

    def case_prefix(self, case: str) -> str:
        return f"{self.root()}{case}/"

    def bundle_prefix(self, case: str, bundle: str) -> str:
        return f"{self.root()}{case}/{bundle}/"


def parse(url: str) -> VaultLocation:
    """`s3://BUCKET[/PREFIX]`; anything else is a usage error naming what was given."""
    if not url.startswith("s3://"):
        raise UsageError(f"vault '{url}' is not an s3:// URL", "give --vault s3://BUCKET[/PREFIX]")
    bucket, _, prefix = url[5:].partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise UsageError(f"vault bucket '{bucket}' is not a valid S3 bucket name", "3-63 of a-z 0-9 . -")
    prefix = prefix.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise UsageError(f"vault prefix '{prefix}' has an empty, '.' or '..' component")
    return VaultLocation(bucket, prefix)


def resolve(url: str | None) -> VaultLocation:
    """The --vault option, else $SEALBOX_VAULT."""
    value = url or os.environ.get(ENV)
    if not value:
        raise UsageError("no vault given", f"use --vault s3://BUCKET[/PREFIX] or set {ENV}")
    return parse(value)


def split_case_bundle(ref: str) -> tuple[str, str]:
    """`CASE/BUNDLE` as given to vault verify and pull."""
    case, sep, bundle = ref.strip("/").partition("/")
    if not sep or not case or not bundle or "/" in bundle or ".." in (case, bundle):
        raise UsageError(
            f"'{ref}' is not CASE/BUNDLE", "e.g. OKC-2026-0042/OKC-2026-0042_clerk-pc_20261124T231500Z"
        )
    return case, bundle
