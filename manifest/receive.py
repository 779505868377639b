"""`sealbox receive`: check a package's .sha256 and .sig, extract it safely, verify, log `received`."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from manifest.custody import append_event_with_receipt
from manifest.errors import KeyError_, PackageError, UsageError
from manifest.export import PACKAGE_RECEIPT, file_sha256, package_paths
from manifest.keys import fingerprint, load_public_pem, verify_signature
from manifest.package import Limits, remove_tree, safe_extract
from manifest.timefmt import compact_utc, now_ns
from manifest.verify import verify_bundle

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from manifest.keys import KeyStore, Signer
    from manifest.verify import VerifyReport

_SHA_LINE = re.compile(rb"^([0-9a-f]{64})  ([^\n/]+)\n?$")
PACKAGE_EXTRAS = ("VERIFY.txt", "custody-report.html")


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
    """Check, extract into quarantine, verify, move into `out_dir`, and sign a `received` event."""
    if not package.is_file():
        raise UsageError(f"{package} is not a file", "give the .tar (or .tar.age) package")
    if not out_dir.is_dir():
        raise UsageError(f"output directory {out_dir} does not exist", "create it or choose another --out")
    encrypted = package.name.endswith(".age")
    if encrypted and identity_file is None:
        raise UsageError(f"{package.name} is encrypted", "give your age identity with --identity FILE")
    identities = read_identities(identity_file) if encrypted and identity_file else []
    with package.open("rb") as fh:
        digest, exporter = check_package(package, fh, trusted, store)
        fh.seek(0)
        quarantine = out_dir / f".quarantine-{package.name}-{compact_utc(now_ns())}"
        if encrypted:
            import pyrage

            with tempfile.TemporaryFile(dir=out_dir) as clear:
                try:
                    pyrage.decrypt_io(fh, clear, identities)
                except Exception as exc:
                    raise PackageError(
                        f"{package.name} cannot be decrypted with the identity in {identity_file}",
                        "is it the identity whose recipient the sender encrypted to?",
                    ) from exc
                clear.seek(0)
                names = safe_extract(clear, quarantine, limits)
        else:
            names = safe_extract(fh, quarantine, limits)
    try:
        bundle_name = _check_layout(names)
        final = out_dir / bundle_name
        extras_final = {extra: out_dir / f"{bundle_name}.{extra}" for extra in PACKAGE_EXTRAS}
        # The exporter's head receipt (older packages have none): the bundle must still hold
        # the event it names, or its custody was cut or rewritten on the way.
        head_receipt = quarantine / PACKAGE_RECEIPT
        if PACKAGE_RECEIPT in names:
            extras_final[PACKAGE_RECEIPT] = out_dir / f"{bundle_name}.{PACKAGE_RECEIPT}"
        for target in [final, *extras_final.values()]:
            if target.exists():
                raise UsageError(f"{target} already exists", "never overwrite evidence: choose another --out")
    except BaseException:
        remove_tree(quarantine)
        raise
    given = (head_receipt,) if PACKAGE_RECEIPT in extras_final else ()
    report = verify_bundle(quarantine / bundle_name, trusted, store=store, receipts=given)
    if not report.ok:
        first = "; ".join(f.line() for f in report.findings[:3])
        raise PackageError(
            f"the bundle in {package.name} does not verify ({len(report.findings)} finding(s): {first})",
            f"nothing was accepted; the extracted copy stays in quarantine at {quarantine} for inspection",
        )
    (quarantine / bundle_name).rename(final)
    for extra, target in extras_final.items():
        (quarantine / extra).rename(target)
    remove_tree(quarantine)
    report.bundle = final
    appended = append_event_with_receipt(
        final,
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
    return ReceiveResult(final, exporter, digest, report, extras_final, appended.event, appended.receipt)


def _check_layout(names: list[str]) -> str:
    """Exactly one bundle directory plus VERIFY.txt and custody-report.html at the top."""
    tops = {name.split("/", 1)[0] for name in names}
    dirs = tops - set(PACKAGE_EXTRAS) - {PACKAGE_RECEIPT}
    if len(dirs) != 1:
        raise PackageError(
            f"the package holds {len(dirs)} top-level entries besides {', '.join(PACKAGE_EXTRAS)}",
            "a package holds exactly one bundle directory",
        )
    name = dirs.pop()
    if f"{name}/bagit.txt" not in names:
        raise PackageError(f"'{name}' in the package is not a bundle (no bagit.txt)")
    return name
