"""RFC 3161 trusted timestamps over tagmanifest-sha256.txt, kept as `tagmanifest-sha256.txt.tsr`.

Requests and replies are built and parsed by `rfc3161-client` (no hand-written ASN.1). A token
counts as a trusted timestamp only when its CMS signature, its message imprint (SHA-256 of
tagmanifest-sha256.txt) and its TSA certificate chain (to `--tsa-ca` or a certificate in the key
store's `tsa/`) all verify. Anything less is said in one plain line: "timestamp present, not
verified", or a finding when the token is malformed or stamps other data.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import TYPE_CHECKING

from manifest.errors import BundleError
from manifest.findings import Finding
from manifest.format import bagit

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography import x509
    from rfc3161_client import TimeStampResponse

    from manifest.signing.keys import KeyStore

_SHA256_OID = "2.16.840.1.101.3.4.2.1"
_TIMEOUT = 30
TSR_MAX_BYTES = 1 << 20  # real tokens with a certificate chain are a few KiB
NOTE_VERIFIED = "timestamp verified"
NOTE_UNVERIFIED = "timestamp present, not verified"


def timestamp_query(data: bytes) -> tuple[bytes, int]:
    """DER TimeStampReq over SHA-256 of `data` with a nonce and certReq; (request, nonce)."""
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

    builder = TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256)
    request = builder.nonce(nonce=True).cert_request(cert_request=True).build()
    return request.as_bytes(), int(request.nonce or 0)


def _decode(tsr: bytes) -> tuple[TimeStampResponse | None, str | None]:
    """The parsed reply, or why it is not one (the library raises ValueError on bad DER)."""
    from rfc3161_client import decode_timestamp_response

    try:
        response = decode_timestamp_response(tsr)
        response.tst_info.message_imprint.message  # noqa: B018 - a reply without a token fails here
    except Exception as exc:  # the Rust parser raises several types for malformed DER
        return None, f"{type(exc).__name__}: {str(exc)[:120] or 'malformed DER'}"
    return response, None


def request_timestamp(url: str, data: bytes) -> bytes:
    """Ask the TSA at `url` for a timestamp over `data`; the DER TimeStampResp."""
    import urllib.error  # only a collection with --tsa talks to the network: keep verify's start fast
    import urllib.request

    query, nonce = timestamp_query(data)
    req = urllib.request.Request(url, data=query, headers={"Content-Type": "application/timestamp-query"})
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT) as resp:
            reply = resp.read(TSR_MAX_BYTES)
    except (urllib.error.URLError, OSError) as exc:
        raise BundleError(f"timestamp authority {url} did not answer ({exc})", "check --tsa URL") from exc
    response, problem = _decode(reply)
    if response is None:
        raise BundleError(f"timestamp authority {url} sent no RFC 3161 timestamp ({problem})")
    if response.status not in (0, 1):
        raise BundleError(f"timestamp authority {url} refused the request (status {response.status})")
    info = response.tst_info
    if info.message_imprint.message != hashlib.sha256(data).digest():
        raise BundleError(f"timestamp authority {url} stamped something else than the data sent")
    if info.nonce != nonce:
        raise BundleError(f"timestamp authority {url} answered another request (nonce differs)")
    return reply


def _load_roots(files: list[Path]) -> tuple[list[x509.Certificate], list[str]]:
    from cryptography import x509

    roots: list[x509.Certificate] = []
    problems = []
    for path in files:
        try:
            roots += x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: not a PEM certificate file ({type(exc).__name__})")
    return roots, problems


def check_token(
    tsr: bytes, data: bytes, roots: list[x509.Certificate], where: str = bagit.TSR
) -> tuple[list[Finding], str | None]:
    """(findings, why not verified) for a .tsr over `data`: ([], None) means fully verified.

    Malformed, refused or other-data tokens are findings. A well-formed token over the right data
    whose signature or chain could not be verified against `roots` (or with no roots) is not a
    finding by itself: the reason is returned for the caller to decide."""
    response, problem = _decode(tsr)
    if response is None and problem and "InvalidSetOrdering" in problem:
        # Some TSAs (openssl ts with `certs`) write a SET OF unsorted: BER, not the DER the
        # parser insists on. Not malformed, but not verifiable here either.
        return [], "its DER is not canonical (an unsorted SET OF); check it with `openssl ts -verify`"
    if response is None:
        return [Finding("timestamp-unreadable", where, f"not an RFC 3161 timestamp token ({problem})")], None
    if response.status not in (0, 1):
        return [
            Finding("timestamp-refused", where, "the reply is a refusal", "0", str(response.status))
        ], None
    imprint = response.tst_info.message_imprint
    if imprint.hash_algorithm.dotted_string != _SHA256_OID:
        return [
            Finding(
                "timestamp-mismatch",
                where,
                "the timestamp is not over a SHA-256 of tagmanifest-sha256.txt",
                _SHA256_OID,
                imprint.hash_algorithm.dotted_string,
            )
        ], None
    if imprint.message != hashlib.sha256(data).digest():
        return [
            Finding(
                "timestamp-mismatch", where, "the timestamp is for other data than tagmanifest-sha256.txt"
            )
        ], None
    if not roots:
        return [], "no trusted TSA certificate (give --tsa-ca FILE or run `sealbox keys trust-tsa FILE`)"
    from rfc3161_client import VerificationError, VerifierBuilder

    builder = VerifierBuilder()
    for root in roots:
        try:
            builder = builder.add_root_certificate(root)
        except ValueError:  # the same certificate twice
            continue
    try:
        builder.build().verify_message(response, data)
    except (VerificationError, ValueError) as exc:
        return [], f"signature or TSA certificate chain does not verify ({str(exc)[:160]})"
    return [], None


def _describe(tsr: bytes) -> str:
    """When, and by whom (the subject of the certificate that signed the token)."""
    from cryptography import x509

    response, _ = _decode(tsr)
    if response is None:
        return ""
    when = response.tst_info.gen_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    tsa = ""
    signers = list(response.signed_data.signer_infos)
    for der in response.signed_data.certificates:
        cert = x509.load_der_x509_certificate(der)
        if signers and (cert.issuer, cert.serial_number) == (signers[0].issuer, signers[0].serial_number):
            tsa = cert.subject.rfc4514_string()
    return f"{bagit.TAGMANIFEST} existed at {when}" + (f" (TSA {tsa})" if tsa else "")


def verify_timestamp(
    tsr: bytes, data: bytes, ca_file: Path | None = None, where: str = bagit.TSR
) -> list[Finding]:
    """Findings for a .tsr over `data`; with `ca_file`, a signature or chain that does not verify
    against it is a finding too (`timestamp-invalid`)."""
    roots, problems = _load_roots([ca_file] if ca_file else [])
    if problems:
        return [Finding("timestamp-ca-unreadable", str(ca_file), problems[0])]
    findings, unverified = check_token(tsr, data, roots, where)
    if findings or ca_file is None or unverified is None:
        return findings
    return [Finding("timestamp-invalid", where, unverified)]


def _read_tsr(path: Path) -> tuple[bytes | None, Finding | None]:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(st.st_mode):
        return None, Finding("timestamp-unreadable", bagit.TSR, "not a regular file")
    if st.st_size > TSR_MAX_BYTES:
        return None, Finding(
            "timestamp-unreadable", bagit.TSR, f"{st.st_size} bytes, more than the {TSR_MAX_BYTES}-byte cap"
        )
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        return os.read(fd, TSR_MAX_BYTES + 1)[:TSR_MAX_BYTES], None
    finally:
        os.close(fd)


def timestamp_status(
    bundle_dir: Path, tsa_ca: Path | None, store: KeyStore | None
) -> tuple[list[Finding], str | None]:
    """For `sealbox verify`: (findings, note). No .tsr: ([], None). A token verified against
    `tsa_ca` or the store's trusted TSA certificates: a "timestamp verified" note. A token that
    is well-formed and over the right data but not verified: a "timestamp present, not verified"
    note, or with `tsa_ca` given a `timestamp-invalid` finding (the verifier asked for it)."""
    tsr, problem = _read_tsr(bundle_dir / bagit.TSR)
    if problem:
        return [problem], None
    if tsr is None:
        return [], None
    tag = bundle_dir / bagit.TAGMANIFEST
    if not tag.is_file() or tag.is_symlink():
        return [Finding("timestamp-orphan", bagit.TSR, "a timestamp without tagmanifest-sha256.txt")], None
    files = ([tsa_ca] if tsa_ca else []) + (store.tsa_certificates() if store is not None else [])
    roots, bad = _load_roots(files)
    if bad and tsa_ca is not None and bad[0].startswith(str(tsa_ca)):
        return [Finding("timestamp-ca-unreadable", str(tsa_ca), bad[0])], None
    findings, unverified = check_token(tsr, tag.read_bytes(), roots)
    if findings:
        return findings, None
    if unverified is None:
        return [], f"{NOTE_VERIFIED}: {_describe(tsr)}"
    if tsa_ca is not None:
        return [Finding("timestamp-invalid", bagit.TSR, unverified)], None
    return [], f"{NOTE_UNVERIFIED} ({unverified})"


def timestamp_findings(bundle_dir: Path, ca_file: Path | None = None) -> list[Finding]:
    """The findings of `timestamp_status` without the key store's TSA certificates."""
    return timestamp_status(bundle_dir, ca_file, None)[0]


def add_timestamp(bundle_dir: Path, url: str) -> Path:
    """Get a timestamp over the bundle's tagmanifest and keep it beside it (outside the tagmanifest)."""
    reply = request_timestamp(url, (bundle_dir / bagit.TAGMANIFEST).read_bytes())
    path = bundle_dir / bagit.TSR
    mode = bundle_dir.stat().st_mode
    bundle_dir.chmod(mode | 0o200)  # sealed directories are 0555; open just long enough to add the file
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        with os.fdopen(fd, "wb") as fh:
            fh.write(reply)
    finally:
        bundle_dir.chmod(mode)
    return path
