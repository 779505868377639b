"""RFC 3161 trusted timestamps over tagmanifest-sha256.txt, kept as `tagmanifest-sha256.txt.tsr`.

The request is a few bytes of DER written here; the reply is checked for a granted status and
for the exact SHA-256 imprint of the data. Checking the TSA's CMS signature and certificate chain
is left to `openssl ts -verify`, the standard tool a court expert would use, when a CA is given.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
from typing import TYPE_CHECKING

from manifest import bagit
from manifest.errors import BundleError
from manifest.findings import Finding

if TYPE_CHECKING:
    from pathlib import Path

_SHA256_OID = bytes.fromhex("0609608648016503040201")  # 2.16.840.1.101.3.4.2.1
_TIMEOUT = 30


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def _int(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")  # leading 0 keeps it positive
    return _tlv(0x02, raw)


def timestamp_query(data: bytes, nonce: int | None = None) -> bytes:
    """DER TimeStampReq: version 1, SHA-256 imprint of `data`, a nonce, certReq TRUE."""
    imprint = _tlv(0x30, _tlv(0x30, _SHA256_OID + b"\x05\x00") + _tlv(0x04, hashlib.sha256(data).digest()))
    nonce = secrets.randbits(63) if nonce is None else nonce
    return _tlv(0x30, _int(1) + imprint + _int(nonce) + b"\x01\x01\xff")


def _read(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at `pos`."""
    if pos + 2 > len(buf):
        raise ValueError("truncated DER")
    tag, first = buf[pos], buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(buf):
            raise ValueError("bad DER length")
        length = int.from_bytes(buf[pos : pos + count], "big")
        pos += count
    if pos + length > len(buf):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def response_status(tsr: bytes) -> int:
    """PKIStatus of a TimeStampResp (0 granted, 1 granted with mods, 2+ refused)."""
    tag, start, _end = _read(tsr, 0)
    if tag != 0x30:
        raise ValueError("not a DER SEQUENCE")
    tag, s_start, _s_end = _read(tsr, start)  # PKIStatusInfo
    tag, i_start, i_end = _read(tsr, s_start)
    if tag != 0x02:
        raise ValueError("no PKIStatus")
    return int.from_bytes(tsr[i_start:i_end], "big")


def _holds_imprint(tsr: bytes, digest: bytes) -> bool:
    """The MessageImprint (sha256 AlgorithmIdentifier + OCTET STRING digest) inside the token."""
    needle = _SHA256_OID
    pos = tsr.find(needle)
    while pos != -1:
        if _tlv(0x04, digest) in tsr[pos : pos + len(needle) + 2 + 34 + 2]:
            return True
        pos = tsr.find(needle, pos + 1)
    return False


def request_timestamp(url: str, data: bytes) -> bytes:
    """Ask the TSA at `url` for a timestamp over `data`; the DER TimeStampResp."""
    import urllib.error  # only a collection with --tsa talks to the network: keep verify's start fast
    import urllib.request

    req = urllib.request.Request(
        url, data=timestamp_query(data), headers={"Content-Type": "application/timestamp-query"}
    )
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT) as resp:
            reply = resp.read(1 << 20)
    except (urllib.error.URLError, OSError) as exc:
        raise BundleError(f"timestamp authority {url} did not answer ({exc})", "check --tsa URL") from exc
    try:
        status = response_status(reply)
    except ValueError as exc:
        raise BundleError(f"timestamp authority {url} sent no RFC 3161 reply ({exc})") from exc
    if status not in (0, 1):
        raise BundleError(f"timestamp authority {url} refused the request (status {status})")
    if not _holds_imprint(reply, hashlib.sha256(data).digest()):
        raise BundleError(f"timestamp authority {url} stamped something else than the data sent")
    return reply


def verify_timestamp(
    tsr: bytes, data: bytes, ca_file: Path | None = None, where: str = bagit.TSR
) -> list[Finding]:
    """Findings for a .tsr over `data`; with `ca_file` also `openssl ts -verify` (signature, chain)."""
    try:
        status = response_status(tsr)
    except ValueError as exc:
        return [Finding("timestamp-unreadable", where, f"not an RFC 3161 reply ({exc})")]
    if status not in (0, 1):
        return [Finding("timestamp-refused", where, "the reply is a refusal", "0", str(status))]
    if not _holds_imprint(tsr, hashlib.sha256(data).digest()):
        return [
            Finding(
                "timestamp-mismatch", where, "the timestamp is for other data than tagmanifest-sha256.txt"
            )
        ]
    if ca_file is None:
        return []
    openssl = shutil.which("openssl")
    if openssl is None:
        return [Finding("timestamp-unchecked", where, "openssl is not installed to check the TSA signature")]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tsr_path, data_path = os.path.join(tmp, "t.tsr"), os.path.join(tmp, "d")  # noqa: PTH118
        with open(tsr_path, "wb") as fh:
            fh.write(tsr)
        with open(data_path, "wb") as fh:
            fh.write(data)
        proc = subprocess.run(
            [openssl, "ts", "-verify", "-in", tsr_path, "-data", data_path, "-CAfile", str(ca_file)],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["verification failed"])[-1]
        return [Finding("timestamp-invalid", where, f"openssl ts -verify failed: {why}")]
    return []


def timestamp_findings(bundle_dir: Path, ca_file: Path | None = None) -> list[Finding]:
    """For `sealbox verify`: nothing when there is no .tsr, else the checks of `verify_timestamp`."""
    tsr = bundle_dir / bagit.TSR
    if not tsr.is_file():
        return []
    tag = bundle_dir / bagit.TAGMANIFEST
    if not tag.is_file():
        return [Finding("timestamp-orphan", bagit.TSR, "a timestamp without tagmanifest-sha256.txt")]
    return verify_timestamp(tsr.read_bytes(), tag.read_bytes(), ca_file)


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
