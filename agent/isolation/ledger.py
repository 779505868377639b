"""Where containment is put on the record: a sealed bundle's custody log, or the case ledger.

The case ledger holds the signed custody events of a case that has no bundle yet:
`$SEALBOX_HOME/cases/<case>/custody/custody.jsonl`, in exactly the format of a bundle's
`custody/custody.jsonl` (FORMAT.md §4: canonical JSON lines, each signed with Ed25519, the first
linked to the genesis hash and every next one to the SHA-256 of the line before). So
`manifest.signing.custody.verify_chain` and `sealbox custody show` read a ledger directory as they read a
bundle, and exporting it is copying that directory.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from manifest.errors import BundleError, KeyError_, SealboxError, UsageError
from manifest.signing.custody import (
    CONTINUATION,
    CUSTODY,
    GENESIS,
    append_event,
    event_line,
    make_event,
    read_lines,
    sha256_hex,
)
from manifest.signing.keys import KeyStore, Signer, read_passphrase_file

# Appends one custody event: (event, details, reason) -> the event as written.
CustodyHook = Callable[[str, dict[str, Any], str], dict[str, Any]]

LEDGER_BUNDLE = "case-ledger"  # the `bundle` field of ledger events: there is no bundle yet


def cases_dir(store: KeyStore | None = None) -> Path:
    return (store or KeyStore.default()).home / "cases"


def case_dir(case: str, store: KeyStore | None = None) -> Path:
    """The ledger directory of `case` (the id percent-encoded into one safe file name)."""
    if not case.strip():
        raise UsageError("a case id is needed", "pass --case ID (the case this containment belongs to)")
    name = quote(case, safe="-_.")
    if name.startswith("."):
        name = "%2E" + name[1:]
    return cases_dir(store) / name


def append(
    case: str, signer: Signer, event: str, details: dict[str, Any], reason: str = ""
) -> dict[str, Any]:
    """Append one signed event to the case ledger, never rewriting what is there."""
    directory = case_dir(case)
    path = directory / CUSTODY
    created = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        raise BundleError(f"cannot append to the case ledger {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        lines = read_lines(directory)
        bad = next((line for line in lines if line.event is None), None)
        if bad is not None:
            raise BundleError(
                f"case ledger line {path}:{bad.number} is unreadable",
                f"run `sealbox custody show --case {case}`",
            )
        existing = path.read_bytes()
        if existing and not existing.endswith(b"\n"):
            raise BundleError(f"{path} ends in a partial line", f"run `sealbox custody show --case {case}`")
        last = lines[-1] if lines else None
        ev = make_event(
            seq=int(last.event["seq"]) + 1 if last and last.event else 1,
            event=event,
            case=case,
            bundle=LEDGER_BUNDLE,
            signer=signer,
            details=details,
            reason=reason,
            prev=sha256_hex(last.raw) if last else GENESIS,
        )
        data = event_line(ev)
        if os.write(fd, data) != len(data):
            raise BundleError(f"short write to {path}: disk full?")
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        for d in (path.parent, directory):
            dir_fd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    return ev


def export(case: str, destination: Path) -> Path:
    """Copy the case ledger to `destination/custody/custody.jsonl` (read it with
    `sealbox custody show DESTINATION`)."""
    source = case_dir(case) / CUSTODY
    if not source.is_file():
        raise UsageError(f"case {case!r} has no ledger at {source}", "check the case id and SEALBOX_HOME")
    target = destination / CUSTODY
    if target.exists():
        raise UsageError(f"{target} already exists", "choose an empty directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def target(case: str, bundle: Path | None, key: str | None) -> dict[str, Any]:
    """Where the events of one containment go (recorded in the state file)."""
    if bundle is None:
        return {"case": case, "bundle": None, "ledger": str(case_dir(case)), "key": key}
    if not (bundle / CONTINUATION).is_file():
        raise UsageError(f"{bundle} is not a sealed sealbox bundle (no custody continuation)")
    return {"case": case, "bundle": str(bundle.resolve()), "ledger": None, "key": key}


def describe(where: dict[str, Any]) -> str:
    if where.get("bundle"):
        return f"bundle {where['bundle']}"
    return f"case ledger {where.get('ledger')}"


def _signer(key: str | None, passphrase_file: Path | None) -> Signer:
    env = os.environ.get("SEALBOX_PASSPHRASE_FILE")
    path = passphrase_file or (Path(env) if env else None)
    return KeyStore.default().load_signer(key, read_passphrase_file(path))


def hook(where: dict[str, Any], passphrase_file: Path | None = None) -> CustodyHook:
    """A hook that signs with the recorded key and appends to the bundle or the case ledger.
    The key is loaded now, so an unusable key stops the command before anything changes."""
    bundle = where.get("bundle")
    case = str(where.get("case") or "")
    if not bundle:
        case_dir(case)  # refuses a missing case id now, not after the change
    signer = _signer(where.get("key"), passphrase_file)

    def append_one(event: str, details: dict[str, Any], reason: str) -> dict[str, Any]:
        if bundle:
            return append_event(Path(bundle), signer, event, details, reason=reason)
        return append(case, signer, event, details, reason)

    return append_one


def unattended_hook(where: dict[str, Any] | None) -> tuple[CustodyHook | None, str | None]:
    """The hook for runs nobody types a passphrase into (expiry, boot, recovery), or None and
    why not (a key with a passphrase signs only when SEALBOX_PASSPHRASE_FILE names its file)."""
    if not where:
        return None, "no custody target is recorded"
    try:
        return hook(where), None
    except (KeyError_, UsageError, SealboxError) as exc:
        return None, exc.message
