"""The one exception hierarchy of sealbox; messages are written for the person at the keyboard."""

from __future__ import annotations


class SealboxError(Exception):
    """Base error. `str()` is a one-line message naming the thing; `hint` says what to do next."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """The message plus the next step, for the CLI to print."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(SealboxError):
    """The request cannot run as given: bad arguments, not a bundle, missing privileges."""

    exit_code = 2


class KeyError_(SealboxError):
    """A key is missing, unreadable, unsafe or locked with another passphrase."""


class BundleError(SealboxError):
    """A bundle cannot be written or read as the format requires."""


class NotABundleError(UsageError):
    """The path given is not a sealbox bundle at all."""


class CollectionInterrupted(SealboxError):
    """The run was stopped before sealing; the partial bundle stays `.incomplete`."""

    exit_code = 130


class WorkerLost(SealboxError):
    """A worker process ended before its work was done (the out-of-memory killer, a signal)."""

    exit_code = 2


class PackageError(SealboxError):
    """An export package is damaged, forged or unsafe to extract."""


class IsolationError(SealboxError):
    """Network isolation could not be applied, checked or removed."""


class UnsafeKeyStore(KeyError_):
    """A key store, trusted/ or key file others could change: trust from it would be planted."""

    exit_code = 2
