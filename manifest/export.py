"""`sealbox export`: hand a sealed bundle over as one signed package (SPEC §7)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from manifest import bagit
from manifest.custody import append_event_with_receipt
from manifest.errors import PackageError, UsageError
from manifest.hashing import sha256_file
from manifest.keys import public_pem
from manifest.package import bundle_entries, write_tar
from manifest.verify import INCOMPLETE, verify_bundle

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.keys import KeyStore, Signer
    from manifest.verify import VerifyReport


@dataclass
class ExportResult:
    package: Path
    sha256_path: Path
    sig_path: Path
    pub_path: Path
    sha256: str
    encrypted: bool
    timestamped: bool
    event: dict[str, Any] = field(default_factory=dict)
    receipt: Path | None = None


# The exporter's signed receipt of the `exported` event, carried in the package (SPEC §4.1).
PACKAGE_RECEIPT = "custody-receipt.json"


def package_paths(package: Path) -> tuple[Path, Path, Path]:
    """The files beside a package: `.sha256`, `.sig` (over the .sha256 file), exporter `.pub.pem`."""
    return (
        package.with_name(package.name + ".sha256"),
        package.with_name(package.name + ".sig"),
        package.with_name(package.name + ".pub.pem"),
    )


def verify_txt(bundle_dir: Path, report: VerifyReport, package_name: str, exporter_fp: str) -> bytes:
    """The commands of SPEC §6 written out for this bundle, so no one needs sealbox to check it."""
    name = bundle_dir.name
    tsr = (bundle_dir / bagit.TSR).is_file()
    lines = [
        f"Evidence bundle {name}",
        f"Case: {report.info.get('External-Identifier', '')}",
        f"Bundle id: {report.info.get('Sealbox-Bundle-Id', '')}",
        f"Host: {report.info.get('Sealbox-Host', '')}",
        f"Bundle signer fingerprint: {report.signer}",
        f"Package exported by: {exporter_fp}",
        "",
        "A fingerprint is SHA256: + the SHA-256 of the raw 32-byte Ed25519 public key. Confirm both",
        "fingerprints with their holders by a second channel (phone, in person) before relying on them.",
        "",
        "1. The package (run where the package files are):",
        f"   openssl pkeyutl -verify -pubin -inkey {package_name}.pub.pem -rawin "
        f"-in {package_name}.sha256 -sigfile {package_name}.sig",
        f"   sha256sum -c {package_name}.sha256",
        "   (the .sig signs the .sha256 file, which names the package's SHA-256.)",
        "",
        "2. The bundle (after extracting the tar):",
        f"   cd {name}",
        "   sha256sum -c manifest-sha256.txt && sha256sum -c tagmanifest-sha256.txt",
        "   openssl pkey -pubin -in keys/signer.pub.pem -outform DER | tail -c 32 | sha256sum"
        "    # must print the signer fingerprint above",
        "   openssl pkeyutl -verify -pubin -inkey keys/signer.pub.pem -rawin -in tagmanifest-sha256.txt "
        "-sigfile tagmanifest-sha256.txt.sig",
        "   minisign -Vm tagmanifest-sha256.txt -p keys/signer.minisign.pub",
        f"   bagit.py --validate ../{name}",
        "   mactime -b metadata/bodyfile.txt -d -z UTC",
        "",
        "3. The chain of custody: line N's prev is the SHA-256 of line N-1 without its newline;",
        "   the first line of continuation.jsonl has the SHA-256 of tagmanifest-sha256.txt.",
        "   sed -n '1p' custody/custody.jsonl | tr -d '\\n' | sha256sum    # = prev of line 2",
        "   sha256sum tagmanifest-sha256.txt    # = prev of continuation.jsonl line 1",
        "   Or with sealbox: sealbox custody show . && sealbox verify . --trust " + str(report.signer),
    ]
    if tsr:
        lines += [
            "",
            "4. The trusted timestamp over tagmanifest-sha256.txt (needs the TSA's CA certificate):",
            "   openssl ts -verify -in tagmanifest-sha256.txt.tsr -data tagmanifest-sha256.txt "
            "-CAfile TSA-CA.pem",
        ]
    return ("\n".join(lines) + "\n").encode()


def _new_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def export_bundle(
    bundle_dir: Path,
    signer: Signer,
    recipient: str,
    out_dir: Path,
    *,
    encrypt_to: str | None = None,
    tsa_url: str | None = None,
    trusted: set[str] | None = None,
    store: KeyStore | None = None,
) -> ExportResult:
    """Verify, timestamp (optional), log `exported`, then write the package and its companions."""
    bundle_dir = bundle_dir.resolve()
    if bundle_dir.name.endswith(INCOMPLETE) or not (bundle_dir / bagit.TAGMANIFEST).is_file():
        raise UsageError(f"{bundle_dir} is not a sealed bundle", "only sealed bundles can be exported")
    if not recipient.strip():
        raise UsageError("--to needs the recipient's name and organization", 'e.g. --to "J. Doe, City PD"')
    if not out_dir.is_dir():
        raise UsageError(f"output directory {out_dir} does not exist", "create it or choose another --out")
    age_recipient = None
    if encrypt_to:
        import pyrage

        try:
            age_recipient = pyrage.x25519.Recipient.from_str(encrypt_to.strip())
        except Exception as exc:  # pyrage raises its own error types
            raise UsageError(f"--encrypt-to '{encrypt_to}' is not an age X25519 recipient (age1...)") from exc
    package = out_dir / (bundle_dir.name + (".tar.age" if encrypt_to else ".tar"))
    sha_path, sig_path, pub_path = package_paths(package)
    for existing in (package, sha_path, sig_path, pub_path):
        if existing.exists():
            raise UsageError(f"{existing} already exists", "choose another --out; nothing was changed")

    report = verify_bundle(bundle_dir, trusted, store=store)
    if not report.ok:
        first = "; ".join(f.line() for f in report.findings[:3])
        raise PackageError(
            f"{bundle_dir.name} does not verify ({len(report.findings)} finding(s): {first})",
            "run `sealbox verify` on it; a bundle that fails verification is not exported",
        )
    timestamped = (bundle_dir / bagit.TSR).is_file()
    if tsa_url and not timestamped:
        from manifest.timestamp import add_timestamp

        add_timestamp(bundle_dir, tsa_url)
        timestamped = True

    appended = append_event_with_receipt(
        bundle_dir,
        signer,
        "exported",
        {
            "recipient": recipient.strip(),
            "exporter": signer.fingerprint,
            "package": package.name,
            "encrypted_to": encrypt_to.strip() if encrypt_to else None,
            "timestamp": timestamped,
        },
        reason=f"hand-over to {recipient.strip()}",
    )
    event = appended.event
    # The report reads the chain itself, so it shows this export; the verdict is the one above.
    from manifest.report import render_report

    extra = {
        "VERIFY.txt": verify_txt(bundle_dir, report, package.name, signer.fingerprint),
        "custody-report.html": render_report(bundle_dir, report).encode(),
        PACKAGE_RECEIPT: appended.receipt.read_bytes(),
    }
    partial = out_dir / (bundle_dir.name + ".tar.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            write_tar(fh, bundle_entries(bundle_dir), extra)
            fh.flush()
            os.fsync(fh.fileno())
        if age_recipient is not None:
            import pyrage

            age_partial = out_dir / (package.name + ".partial")
            with partial.open("rb") as src, age_partial.open("xb") as dst:
                pyrage.encrypt_io(src, dst, [age_recipient])
                dst.flush()
                os.fsync(dst.fileno())
            partial.unlink()  # no clear-text copy stays beside the encrypted one
            partial = age_partial
        partial.chmod(0o444)
        partial.rename(package)
    finally:
        if partial.exists():
            partial.unlink()
    digest = sha256_file(package)
    sha_bytes = bagit.manifest_line(digest, package.name)
    _new_file(sha_path, sha_bytes)
    _new_file(sig_path, signer.sign(sha_bytes))
    _new_file(pub_path, public_pem(signer.public))
    return ExportResult(
        package, sha_path, sig_path, pub_path, digest, bool(encrypt_to), timestamped, event, appended.receipt
    )


def file_sha256(fh: Any) -> str:
    """SHA-256 of an open binary file from its start, leaving it at the end."""
    h = hashlib.sha256()
    fh.seek(0)
    while chunk := fh.read(1 << 20):
        h.update(chunk)
    return h.hexdigest()
