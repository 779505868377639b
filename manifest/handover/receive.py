"""`sealbox receive`: check a package's .sha256 and .sig, extract it safely, verify, log `received`."""

from __future__ import annotations

import base64
import fcntl
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from manifest.errors import KeyError_, PackageError, UsageError
from manifest.format.timefmt import compact_utc, now_ns
from manifest.handover.export import PACKAGE_RECEIPT, file_sha256, package_paths
from manifest.handover.package import Limits, remove_tree, safe_extract
from manifest.osio.crashpoint import crash_point
from manifest.signing.custody import append_event_with_receipt, event_line
from manifest.signing.keys import Identity, fingerprint, load_public_pem, verify_signature
from manifest.signing.receipts import make_receipt, write_receipt
from manifest.verify import verify_bundle

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from manifest.signing.keys import KeyStore, Signer
    from manifest.verify import VerifyReport

_SHA_LINE = re.compile(rb"^([0-9a-f]{64})  ([^\n/]+)\n?$")
PACKAGE_EXTRAS = ("VERIFY.txt", "custody-report.html")
_QUARANTINE = ".quarantine-"
_EXTRACTED = "package"  # inside the quarantine directory, which this process holds locked


@dataclass
class ReceiveResult:
    bundle: Path
    exporter: str
    sha256: str
    report: VerifyReport
    extras: dict[str, Path] = field(default_factory=dict)
    event: dict[str, Any] = field(default_factory=dict)
    receipt: Path | None = None


def _exporter_keys(pub_path: Path, trusted: set[str], store: KeyStore | None) -> list[Ed25519PublicKey]:
    """The public keys the package may be signed by: the one beside it, then trusted store keys."""
    keys: list[Ed25519PublicKey] = []
    if pub_path.is_file():
        keys.append(load_public_pem(pub_path.read_bytes(), str(pub_path)))
    if store is not None:
        for stored in [*store.trusted_keys(), *store.own_keys()]:
            if stored.identity.fingerprint in trusted:
                keys.append(load_public_pem((stored.directory / "public.pem").read_bytes(), "store key"))
    return keys


def check_package(package: Path, fh: IO[bytes], trusted: set[str], store: KeyStore | None) -> tuple[str, str]:
    """(sha256, exporter fingerprint) once .sha256 and .sig hold for a trusted exporter."""
    sha_path, sig_path, pub_path = package_paths(package)
    for need in (sha_path, sig_path):
        if not need.is_file():
            raise PackageError(f"{need.name} is missing beside {package.name}", "ask the sender for it")
    sha_bytes = sha_path.read_bytes()
    m = _SHA_LINE.match(sha_bytes)
    if not m:
        raise PackageError(f"{sha_path.name} is not one sha256sum line for the package")
    if m.group(2).decode("utf-8", "replace") != package.name:
        raise PackageError(
            f"{sha_path.name} is for another file ('{m.group(2).decode('utf-8', 'replace')}')",
            f"expected a line for {package.name}",
        )
    found = file_sha256(fh)
    if found != m.group(1).decode():
        raise PackageError(
            f"{package.name} does not match {sha_path.name} (expected {m.group(1).decode()}, found {found})",
            "the package was damaged or altered in transit; ask the sender to send it again",
        )
    sig = sig_path.read_bytes()
    signer_fp = None
    try:
        candidates = _exporter_keys(pub_path, trusted, store)
    except KeyError_ as exc:
        raise PackageError(f"{pub_path.name} is not a usable public key ({exc.message})") from exc
    for key in candidates:
        if verify_signature(key, sig, sha_bytes):
            signer_fp = fingerprint(key)
            break
    if signer_fp is None:
        raise PackageError(
            f"{sig_path.name} is not a valid signature over {sha_path.name} by the exporter's key",
            "the package or its signature was altered, or it was signed by a key you do not have",
        )
    if signer_fp not in trusted:
        raise PackageError(
            f"{package.name} was signed by {signer_fp}, which you do not trust",
            "confirm the fingerprint with the sender, then pass --trust " + signer_fp,
        )
    return found, signer_fp


def read_identities(path: Path) -> list[Any]:
    """age X25519 identities from an identity file (`AGE-SECRET-KEY-1...` lines; # comments)."""
    import pyrage

    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read identity file {path}: {exc.strerror}") from exc
    identities = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            try:
                identities.append(pyrage.x25519.Identity.from_str(line))
            except Exception as exc:  # never echo the line: it is a secret
                raise UsageError(f"identity file {path} holds a line that is not an age identity") from exc
    if not identities:
        raise UsageError(f"identity file {path} holds no age identity")
    return identities


def _remove_stale_quarantines(out_dir: Path, package: Path) -> None:
    """Quarantines an interrupted receive of this package left behind. A running receive holds a
    lock on its own, so only those no process holds are removed."""
    prefix = f"{_QUARANTINE}{package.name}-"
    for entry in out_dir.iterdir():
        if not entry.name.startswith(prefix) or entry.is_symlink() or not entry.is_dir():
            continue
        fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        finally:
            os.close(fd)
        remove_tree(entry)


def _new_quarantine(out_dir: Path, package: Path) -> tuple[Path, int]:
    """A fresh quarantine directory, locked by this process for as long as it lives."""
    path = out_dir / f"{_QUARANTINE}{package.name}-{compact_utc(now_ns())}-{os.getpid()}"
    path.mkdir(mode=0o700)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return path, fd


def _same_file(path: Path, other: Path) -> bool:
    """Whether `path` is a regular file holding exactly the bytes of `other`."""
    if path.is_symlink() or not path.is_file():
        return False
    return path.stat().st_size == other.stat().st_size and path.read_bytes() == other.read_bytes()


def receive_package(
    package: Path,
    signer: Signer,
    trusted: set[str],
    out_dir: Path,
    *,
    identity_file: Path | None = None,
    limits: Limits | None = None,
    store: KeyStore | None = None,
) -> ReceiveResult:
    """Check, extract into quarantine, verify, sign a `received` event in the quarantined copy,
    then move it into `out_dir`: every check comes before anything is moved, and the bundle's
    rename is the last step, so a receive stopped anywhere can simply be run again."""
    if not package.is_file():
        raise UsageError(f"{package} is not a file", "give the .tar (or .tar.age) package")
    if not out_dir.is_dir():
        raise UsageError(f"output directory {out_dir} does not exist", "create it or choose another --out")
    encrypted = package.name.endswith(".age")
    if encrypted and identity_file is None:
        raise UsageError(f"{package.name} is encrypted", "give your age identity with --identity FILE")
    identities = read_identities(identity_file) if encrypted and identity_file else []
    try:
        _remove_stale_quarantines(out_dir, package)
        quarantine, lock = _new_quarantine(out_dir, package)
        try:
            return _receive_into(
                package, signer, trusted, out_dir, quarantine, identities, identity_file, limits, store
            )
        finally:
            os.close(lock)
            remove_tree(quarantine)
    except OSError as exc:
        raise PackageError(
            f"receiving {package.name} failed: {exc.strerror or exc} ({exc.filename or out_dir})",
            "nothing was moved into place; fix that and run the same command again",
        ) from exc


def _receive_into(
    package: Path,
    signer: Signer,
    trusted: set[str],
    out_dir: Path,
    quarantine: Path,
    identities: list[Any],
    identity_file: Path | None,
    limits: Limits | None,
    store: KeyStore | None,
) -> ReceiveResult:
    extracted = quarantine / _EXTRACTED
    with package.open("rb") as fh:
        digest, exporter = check_package(package, fh, trusted, store)
        fh.seek(0)
        if identities:
            import pyrage

            with tempfile.TemporaryFile(dir=quarantine) as clear:
                try:
                    pyrage.decrypt_io(fh, clear, identities)
                except Exception as exc:
                    raise PackageError(
                        f"{package.name} cannot be decrypted with the identity in {identity_file}",
                        "is it the identity whose recipient the sender encrypted to?",
                    ) from exc
                clear.seek(0)
                names = safe_extract(clear, extracted, limits)
        else:
            names = safe_extract(fh, extracted, limits)
    crash_point("receive-extracted")
    bundle_name = _check_layout(names, extracted)
    final = out_dir / bundle_name
    extras_final = {extra: out_dir / f"{bundle_name}.{extra}" for extra in PACKAGE_EXTRAS}
    if final.exists() or final.is_symlink():
        raise UsageError(f"{final} already exists", "never overwrite evidence: choose another --out")
    for extra, target in extras_final.items():
        # The same bytes are there when a receive of this package was stopped after moving them.
        if (target.exists() or target.is_symlink()) and not _same_file(target, extracted / extra):
            raise UsageError(f"{target} already exists", "never overwrite evidence: choose another --out")
    # The exporter's head receipt (older packages have none): the bundle must still hold the
    # event it names, or its custody was cut or rewritten on the way.
    head_receipt = extracted / PACKAGE_RECEIPT
    if PACKAGE_RECEIPT in names:
        extras_final[PACKAGE_RECEIPT] = out_dir / f"{bundle_name}.{PACKAGE_RECEIPT}"
        target = extras_final[PACKAGE_RECEIPT]
        if (target.exists() or target.is_symlink()) and not _same_file(target, head_receipt):
            raise UsageError(f"{target} already exists", "never overwrite evidence: choose another --out")
    given = (head_receipt,) if PACKAGE_RECEIPT in extras_final else ()
    report = verify_bundle(extracted / bundle_name, trusted, store=store, receipts=given)
    if not report.ok:
        first = "; ".join(f.line() for f in report.findings[:3])
        rejected = out_dir / quarantine.name.replace(_QUARANTINE, ".rejected-", 1)
        extracted.rename(rejected)  # kept for inspection, under a name that says why
        raise PackageError(
            f"the bundle in {package.name} does not verify ({len(report.findings)} finding(s): {first})",
            f"nothing was accepted; the extracted copy is kept for inspection at {rejected}",
        )
    # Everything is checked. The event goes into the quarantined copy first: the bundle reaches
    # its place with it, or not at all.
    appended = append_event_with_receipt(
        extracted / bundle_name,
        signer,
        "received",
        {
            "package": package.name,
            "package_sha256": digest,
            "exporter": exporter,
            "verified": True,
            "verified_at": report.checked_at,
            "signer": report.signer,
        },
        reason=f"received from {exporter}",
    )
    crash_point("receive-event-appended")
    for extra, target in extras_final.items():
        if target.exists():
            continue
        (extracted / extra).rename(target)
    crash_point("receive-extras-moved")
    (extracted / bundle_name).rename(final)
    dir_fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    report.bundle = final
    # The receipt was made for the quarantined copy; the copy that stays is this one, and a
    # receipt holds a log strictly only at the path it names (SPEC §4.1).
    line = event_line(appended.event)[:-1]
    write_receipt(appended.receipt.parent, make_receipt(signer, appended.event, line, final))
    return ReceiveResult(final, exporter, digest, report, extras_final, appended.event, appended.receipt)


def _check_layout(names: list[str], extracted: Path) -> str:
    """Exactly one bundle directory plus VERIFY.txt and custody-report.html (files) at the top."""
    tops = {name.split("/", 1)[0] for name in names}
    for extra in PACKAGE_EXTRAS:
        if extra not in names or not (extracted / extra).is_file():
            raise PackageError(
                f"the package holds no {extra} file",
                "a package holds one bundle directory, VERIFY.txt and custody-report.html",
            )
    dirs = tops - set(PACKAGE_EXTRAS) - {PACKAGE_RECEIPT}
    if len(dirs) != 1:
        raise PackageError(
            f"the package holds {len(dirs)} top-level entries besides {', '.join(PACKAGE_EXTRAS)}",
            "a package holds exactly one bundle directory",
        )
    name = dirs.pop()
    if f"{name}/bagit.txt" not in names or not (extracted / name).is_dir():
        raise PackageError(f"'{name}' in the package is not a bundle (no bagit.txt)")
    return name


def keys_to_remember(bundle: Path, fingerprints: set[str], store: KeyStore) -> list[tuple[Identity, Any]]:
    """For each fingerprint trusted for one receive (`--trust`) and not yet in the store: its
    public key and names, from the custody events it signed in the received bundle (every event
    carries `actor.public_key`, SPEC §8.1, whose hash is the fingerprint). A fingerprint that
    signed nothing in the bundle is left out: there is no key to keep."""
    from manifest.signing.custody import read_lines
    from manifest.signing.keys import public_from_raw

    known = store.trusted_fingerprints() | {k.identity.fingerprint for k in store.own_keys()}
    wanted = fingerprints - known
    found: dict[str, tuple[Identity, Any]] = {}
    for line in read_lines(bundle):
        actor = (line.event or {}).get("actor")
        if not isinstance(actor, dict) or actor.get("key") not in wanted or actor["key"] in found:
            continue
        try:
            raw = base64.b64decode(str(actor.get("public_key", "")), validate=True)
            public = public_from_raw(raw)
        except (ValueError, TypeError):
            continue
        if fingerprint(raw) != actor["key"]:
            continue
        names = [str(actor.get(k) or "") for k in ("name", "role", "organization", "contact")]
        found[actor["key"]] = (Identity(names[0], names[1], names[2], actor["key"], names[3]), public)
    return [found[fp] for fp in sorted(found)]
