"""minisign's public-key and prehashed signature formats, so `minisign -V` checks our Ed25519 keys."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_PUB_ALG = b"Ed"
_PREHASHED_SIG_ALG = b"ED"


def key_id(raw_public: bytes) -> bytes:
    """An 8-byte key id derived from the public key (minisign only compares it)."""
    return hashlib.sha256(raw_public).digest()[:8]


def _id_text(kid: bytes) -> str:
    return kid[::-1].hex().upper()  # minisign prints the id as a little-endian u64


def public_key_file(raw_public: bytes) -> str:
    """Content of a `minisign.pub` file for this key."""
    kid = key_id(raw_public)
    blob = base64.b64encode(_PUB_ALG + kid + raw_public).decode()
    return f"untrusted comment: minisign public key {_id_text(kid)}\n{blob}\n"


def sign_prehashed(private: Ed25519PrivateKey, message: bytes, trusted_comment: str) -> str:
    """Content of a `.minisig` file: BLAKE2b-512 prehashed signature plus signed trusted comment."""
    if "\n" in trusted_comment or "\r" in trusted_comment:
        raise ValueError("a minisign trusted comment must be one line")
    raw_public = private.public_key().public_bytes_raw()
    kid = key_id(raw_public)
    signature = private.sign(hashlib.blake2b(message, digest_size=64).digest())
    comment = trusted_comment.encode()
    global_sig = private.sign(signature + comment)
    return (
        f"untrusted comment: signature from sealbox key {_id_text(kid)}\n"
        f"{base64.b64encode(_PREHASHED_SIG_ALG + kid + signature).decode()}\n"
        f"trusted comment: {trusted_comment}\n"
        f"{base64.b64encode(global_sig).decode()}\n"
    )


MAX_FILE_BYTES = 4096  # a .minisig or minisign.pub is four lines of base64 and comments


def read_small(path: os.PathLike[str] | str) -> bytes:
    """At most MAX_FILE_BYTES + 1 bytes of a minisign file (enough to call it malformed when
    larger); a link or fifo is not opened as one (O_NOFOLLOW, O_NONBLOCK): b"" then."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.read(fd, MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)


def _text_lines(data: str | bytes) -> list[str] | None:
    """The lines of a minisign file, or None when it is not small UTF-8 text."""
    if isinstance(data, bytes):
        if len(data) > MAX_FILE_BYTES:
            return None
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if len(data) > MAX_FILE_BYTES:
        return None
    return data.splitlines()


def public_key_blob(public_file: str | bytes) -> bytes | None:
    """The decoded key line of a `minisign.pub` (alg, key id, key), or None when malformed."""
    lines = _text_lines(public_file)
    if lines is None or len(lines) < 2:
        return None
    try:
        blob = base64.b64decode(lines[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    return blob if blob[:2] == _PUB_ALG and len(blob) == 42 else None


def verify_prehashed(public_file: str | bytes, signature_file: str | bytes, message: bytes) -> str | None:
    """Check a `.minisig` against a `minisign.pub`; None when valid, else what is wrong. Both files
    are untrusted input: any garbage (non-UTF-8, bad base64, wrong lengths) is an answer, not a crash."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    pub_blob = public_key_blob(public_file)
    lines = _text_lines(signature_file)
    if pub_blob is None or lines is None or len(lines) < 4:
        return "minisign files are malformed"
    if not lines[2].startswith("trusted comment: "):
        return "minisign files are malformed"
    try:
        sig_blob = base64.b64decode(lines[1], validate=True)
        global_sig = base64.b64decode(lines[3], validate=True)
    except (binascii.Error, ValueError):
        return "minisign files are malformed"
    comment = lines[2].removeprefix("trusted comment: ").encode()
    if len(sig_blob) != 74 or len(global_sig) != 64:
        return "minisign files are malformed"
    if sig_blob[:2] != _PREHASHED_SIG_ALG:
        return "signature is not prehashed (ED)"
    if sig_blob[2:10] != pub_blob[2:10]:
        return "signature was made by another key id"
    public = Ed25519PublicKey.from_public_bytes(pub_blob[10:])
    signature = sig_blob[10:]
    try:
        public.verify(signature, hashlib.blake2b(message, digest_size=64).digest())
    except InvalidSignature:
        return "signature does not match the file"
    try:
        public.verify(global_sig, signature + comment)
    except InvalidSignature:
        return "trusted comment signature is invalid"
    return None
