"""`sealbox export`: hand a sealed bundle over as one signed package (SPEC §7)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from manifest.errors import BundleError, PackageError, UsageError
from manifest.format import bagit
from manifest.handover.package import bundle_entries, write_tar
from manifest.hashing import sha256_file
from manifest.osio.crashpoint import crash_point
from manifest.signing.custody import (
    CONTINUATION,
    event_line,
    make_event,
    read_lines,
    sha256_hex,
    verify_chain,
)
from manifest.signing.keys import public_pem
from manifest.signing.receipts import make_receipt, prepare_receipt_dir, receipt_file_bytes, write_receipt
from manifest.verify import INCOMPLETE, verify_bundle

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from manifest.signing.keys import KeyStore, Signer
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


def _replace_file(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all (a temp name, fsync'd, renamed over)."""
    tmp = path.with_name(path.name + ".partial")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class _Staged:
    """The `exported` event made ready for the package, not yet in the bundle's log."""

    event: dict[str, Any]
    line: bytes
    log: bytes  # the continuation log as it will be once the event is appended
    receipt: dict[str, Any]  # the exporter's signed receipt of the event, carried in the package


@contextlib.contextmanager
def _locked_log(bundle_dir: Path) -> Iterator[int]:
    """The bundle's continuation log, open for appending and locked for the whole export: no
    other custody event can come between the one the package carries and the log's own."""
    path = bundle_dir / CONTINUATION
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise BundleError(f"{path} is missing", "is this a sealbox bundle?") from None
    except OSError as exc:
        raise BundleError(f"cannot append to {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"{bundle_dir.name} is being exported or given a custody event by another process",
                "wait for it to finish, then run the export again",
            ) from None
        yield fd
    finally:
        os.close(fd)


def _stage_event(bundle_dir: Path, signer: Signer, details: dict[str, Any], reason: str) -> _Staged:
    """The next `exported` event, linked to the log's last line (SPEC §4), not yet appended."""
    log = (bundle_dir / CONTINUATION).read_bytes()
    if log and not log.endswith(b"\n"):
        raise BundleError(f"{bundle_dir / CONTINUATION} ends in a partial line", "run `sealbox verify` first")
    # As for every append (custody.append_event): a new signature never extends a broken chain.
    findings, lines = verify_chain(bundle_dir)
    if findings:
        raise BundleError(
            f"the custody chain of {bundle_dir} does not hold ({findings[0].line()})",
            "nothing was exported; run `sealbox verify` on the bundle",
        )
    sealed = next((line.event for line in lines if line.event and line.event.get("event") == "sealed"), None)
    if sealed is None:
        raise BundleError(f"{bundle_dir} has no 'sealed' custody event", "only sealed bundles are exported")
    last = lines[-1]
    if last.file == CONTINUATION:
        prev = sha256_hex(last.raw)
    else:
        prev = sha256_hex((bundle_dir / bagit.TAGMANIFEST).read_bytes())
    seq = last.event.get("seq") if last.event else None
    event = make_event(
        seq=(seq if isinstance(seq, int) else len(lines)) + 1,
        event="exported",
        case=str(sealed.get("case", "")),
        bundle=str(sealed.get("bundle", "")),
        signer=signer,
        details=details,
        reason=reason,
        prev=prev,
    )
    line = event_line(event)
    return _Staged(event, line, log + line, make_receipt(signer, event, line[:-1], bundle_dir))


def _staged_name(package: Path, line: bytes) -> Path:
    """A complete, durable package waiting for its event: named by the SHA-256 of that line."""
    return package.with_name(f"{package.name}.staged-{sha256_hex(line[:-1])}")


def _publish(staged: Path, package: Path, signer: Signer) -> str:
    """Companions, then the package under its own name: the last step of an export."""
    digest = sha256_file(staged)
    sha_path, sig_path, pub_path = package_paths(package)
    sha_bytes = bagit.manifest_line(digest, package.name)
    _replace_file(sha_path, sha_bytes)
    _replace_file(sig_path, signer.sign(sha_bytes))  # Ed25519 is deterministic: a rerun writes the same
    _replace_file(pub_path, public_pem(signer.public))
    staged.rename(package)
    _fsync_dir(package.parent)
    return digest


def _leftovers(bundle_dir: Path, package: Path, signer: Signer) -> ExportResult | None:
    """What an interrupted export of this bundle left in the output directory (we hold the lock,
    so nothing else is writing it): a package whose event reached the log is published; every
    other leftover (half-written `.partial`, staged package without its event) is removed."""
    logged: dict[str, tuple[dict[str, Any], bytes]] = {}
    for line in read_lines(bundle_dir):
        if line.file == CONTINUATION and line.event and line.event.get("event") == "exported":
            logged[sha256_hex(line.raw)] = (line.event, line.raw)
    finished: ExportResult | None = None
    prefix = package.name + ".staged-"
    partials = (bundle_dir.name + ".tar.partial", bundle_dir.name + ".tar.age.partial")
    for entry in sorted(package.parent.iterdir()):
        name = entry.name
        if name not in partials and not (name.startswith(prefix) and not name.endswith(".partial")):
            continue
        if entry.is_dir() and not entry.is_symlink():
            raise UsageError(
                f"{entry} is a directory, where sealbox keeps an unfinished package",
                "move it out of the way, then run the export again",
            )
        if name in partials:
            entry.unlink()  # a half-written package; unlink does not follow a link
            continue
        event, raw = logged.get(name.removeprefix(prefix), (None, b""))
        if event is None or not entry.is_file() or entry.is_symlink() or finished is not None:
            entry.unlink()  # its event never reached the log: it was never exported
            continue
        if package.exists():
            raise UsageError(f"{package} already exists beside an interrupted export's package {entry}")
        # The run that was stopped may not have kept its receipt: keep one now.
        receipt = write_receipt(
            prepare_receipt_dir(signer, str(event.get("bundle", ""))),
            make_receipt(signer, event, raw, bundle_dir),
        )
        digest = _publish(entry, package, signer)
        sha_path, sig_path, pub_path = package_paths(package)
        details = event.get("details") or {}
        finished = ExportResult(
            package,
            sha_path,
            sig_path,
            pub_path,
            digest,
            bool(details.get("encrypted_to")),
            bool(details.get("timestamp")),
            event,
            receipt,
        )
    return finished


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
    """Verify, timestamp (optional), write the package with its own `exported` event, make it
    durable, append the event to the bundle's log, then give the package its name (SPEC §7)."""
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
    details = {
        "recipient": recipient.strip(),
        "exporter": signer.fingerprint,
        "package": package.name,
        "encrypted_to": encrypt_to.strip() if encrypt_to else None,
    }
    try:
        return _export_locked(
            bundle_dir, signer, recipient, package, details, age_recipient, tsa_url, trusted, store
        )
    except OSError as exc:
        raise PackageError(
            f"export of {bundle_dir.name} failed: {exc.strerror or exc} ({exc.filename or package.parent})",
            "fix that and run the same command again: an interrupted export is finished or cleaned up",
        ) from exc


def _export_locked(
    bundle_dir: Path,
    signer: Signer,
    recipient: str,
    package: Path,
    details: dict[str, Any],
    age_recipient: Any,
    tsa_url: str | None,
    trusted: set[str] | None,
    store: KeyStore | None,
) -> ExportResult:
    """`export_bundle` with the bundle's continuation log locked."""
    encrypt_to = details.get("encrypted_to")
    with _locked_log(bundle_dir) as log_fd:
        finished = _leftovers(bundle_dir, package, signer)
        if finished is not None:
            done = {k: (finished.event.get("details") or {}).get(k) for k in details}
            if done != details:
                raise UsageError(
                    f"finished an interrupted export of {bundle_dir.name} to "
                    f"{done.get('recipient')} ({finished.package}); this export was not made",
                    "run it again with another --out",
                )
            return finished
        for existing in (package, *package_paths(package)):
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
            from manifest.signing.timestamp import add_timestamp

            add_timestamp(bundle_dir, tsa_url)
            timestamped = True
        staged = _stage_event(
            bundle_dir,
            signer,
            {**details, "timestamp": timestamped},
            reason=f"hand-over to {recipient.strip()}",
        )
        ready = _write_package(bundle_dir, report, package, signer, staged, age_recipient)
        crash_point("export-staged")
        # The package is complete and durable: only now does the log say it was exported.
        if os.fstat(log_fd).st_size != len(staged.log) - len(staged.line):
            raise BundleError(
                f"{bundle_dir / CONTINUATION} changed during the export", "run the export again"
            )
        receipt_dir = prepare_receipt_dir(signer, str(staged.event["bundle"]))
        view = memoryview(staged.line)
        while view:
            view = view[os.write(log_fd, view) :]
        os.fsync(log_fd)
        crash_point("export-event-appended")
        receipt = write_receipt(receipt_dir, staged.receipt)
        digest = _publish(ready, package, signer)
    sha_path, sig_path, pub_path = package_paths(package)
    return ExportResult(
        package, sha_path, sig_path, pub_path, digest, bool(encrypt_to), timestamped, staged.event, receipt
    )


def _write_package(
    bundle_dir: Path,
    report: VerifyReport,
    package: Path,
    signer: Signer,
    staged: _Staged,
    age_recipient: Any,
) -> Path:
    """The package, its custody log ending in its own `exported` event, written as `.partial`,
    fsync'd and renamed to its staged name (SPEC §7)."""
    from manifest.handover.report import render_report

    extra = {
        "VERIFY.txt": verify_txt(bundle_dir, report, package.name, signer.fingerprint),
        "custody-report.html": render_report(bundle_dir, report, staged_line=staged.line).encode(),
        PACKAGE_RECEIPT: receipt_file_bytes(staged.receipt),
    }
    replaced = {f"{bundle_dir.name}/{CONTINUATION}": staged.log}
    partial = package.with_name(bundle_dir.name + ".tar.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            write_tar(fh, bundle_entries(bundle_dir), extra, replaced)
            crash_point("export-partial-written")
            fh.flush()
            os.fsync(fh.fileno())
        if age_recipient is not None:
            import pyrage

            age_partial = package.with_name(package.name + ".partial")
            with partial.open("rb") as src, age_partial.open("xb") as dst:
                pyrage.encrypt_io(src, dst, [age_recipient])
                dst.flush()
                os.fsync(dst.fileno())
            partial.unlink()  # no clear-text copy stays beside the encrypted one
            partial = age_partial
        partial.chmod(0o444)
        ready = _staged_name(package, staged.line)
        partial.rename(ready)
        _fsync_dir(package.parent)
    finally:
        if partial.exists():
            partial.unlink()
    return ready


def file_sha256(fh: Any) -> str:
    """SHA-256 of an open binary file from its start, leaving it at the end."""
    h = hashlib.sha256()
    fh.seek(0)
    while chunk := fh.read(1 << 20):
        h.update(chunk)
    return h.hexdigest()
