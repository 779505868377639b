"""Vault errors: children of the one sealbox hierarchy, one line naming the thing and what to do."""

from __future__ import annotations

from manifest.errors import SealboxError


class VaultError(SealboxError):
    """The vault refused or cannot serve the request (no bucket, no Object Lock, denied)."""

    exit_code = 2


class VaultUnreachable(VaultError):
    """The vault's endpoint did not answer: nothing was stored."""


class BundleNotVerified(SealboxError):
    """A bundle with findings is never sent to the vault."""

    exit_code = 1
