"""Ed25519 keys: the key store, identities, fingerprints, trust, and the signer used everywhere."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from manifest import minisign
from manifest.errors import KeyError_, UsageError

FP_PREFIX = "SHA256:"


def fingerprint(public: Ed25519PublicKey | bytes) -> str:
    """`SHA256:` + lowercase hex SHA-256 of the raw 32-byte public key (SPEC §5)."""
    raw = public if isinstance(public, bytes) else public.public_bytes_raw()
    return FP_PREFIX + hashlib.sha256(raw).hexdigest()


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_pem(data: bytes, what: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise KeyError_(f"{what} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyError_(f"{what} is not an Ed25519 public key")
    return key


def public_from_raw(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_signature(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def normalize_fp(ref: str) -> str:
    """Accept `SHA256:hex`, bare hex, or a hex prefix; return lowercase hex (maybe partial)."""
    text = ref.strip()
    if text.upper().startswith(FP_PREFIX):
        text = text[len(FP_PREFIX) :]
    text = text.lower()
    if not text or any(c not in "0123456789abcdef" for c in text):
        raise UsageError(f"'{ref}' is not a key fingerprint", "give SHA256:<hex> or a hex prefix")
    return text


@dataclass(frozen=True)
class Identity:
    """Who holds a key: what custody events and reports show."""

    name: str
    role: str
    organization: str
    fingerprint: str

    def as_actor(self) -> dict[str, str]:
        return {
            "name": self.name,
            "role": self.role,
            "organization": self.organization,
            "key": self.fingerprint,
        }


@dataclass(frozen=True)
class Signer:
    """A loaded private key with its identity. Never serialized, never enters a bundle."""

    identity: Identity
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    def public_b64(self) -> str:
        return base64.b64encode(self.public.public_bytes_raw()).decode()

    def minisign(self, message: bytes, trusted_comment: str) -> str:
        return minisign.sign_prehashed(self.private, message, trusted_comment)


@dataclass(frozen=True)
class StoredKey:
    identity: Identity
    directory: Path
    has_private: bool
    encrypted: bool


def keeps_permissions(directory: Path) -> bool:
    """Whether files in `directory` keep the mode they are given. exFAT and FAT (most USB sticks)
    show every file as readable by all, whatever chmod says; there only a passphrase keeps a
    private key private."""
    probe = directory / f".sealbox-mode-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return True  # cannot tell: the strict rule stands
    try:
        os.fchmod(fd, 0o600)
        return not stat.S_IMODE(os.fstat(fd).st_mode) & 0o077
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)


_NO_PERMISSIONS_HINT = (
    "on such a disk make the key with --passphrase-file, or keep it on a disk with permissions"
)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    path.chmod(mode)


class KeyStore:
    """`$SEALBOX_HOME` (default `~/.config/sealbox`): `keys/<hex>/` and `trusted/<hex>/`."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.keys_dir = home / "keys"
        self.trusted_dir = home / "trusted"

    @classmethod
    def default(cls) -> KeyStore:
        env = os.environ.get("SEALBOX_HOME")
        return cls(Path(env) if env else Path.home() / ".config" / "sealbox")

    # -- generating and listing -------------------------------------------------
    def generate(self, name: str, role: str, organization: str, passphrase: bytes | None = None) -> StoredKey:
        if not name.strip():
            raise UsageError("a key needs a holder name", "pass --name")
        self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not passphrase and not keeps_permissions(self.keys_dir):
            raise UsageError(
                f"{self.keys_dir} is on a disk without file permissions (exFAT, FAT): anyone could "
                "read a private key there without a passphrase",
                _NO_PERMISSIONS_HINT,
            )
        private = Ed25519PrivateKey.generate()
        identity = Identity(name, role, organization, fingerprint(private.public_key()))
        directory = self.keys_dir / identity.fingerprint[len(FP_PREFIX) :]
        directory.mkdir(parents=True, mode=0o700)
        self.keys_dir.chmod(0o700)
        algorithm: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
        )
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, algorithm)
        _write_new(directory / "private.pem", pem, 0o600)
        self._write_public(directory, private.public_key(), identity)
        return StoredKey(identity, directory, True, bool(passphrase))

    @staticmethod
    def _write_public(directory: Path, public: Ed25519PublicKey, identity: Identity) -> None:
        _write_new(directory / "public.pem", public_pem(public), 0o644)
        _write_new(
            directory / "minisign.pub", minisign.public_key_file(public.public_bytes_raw()).encode(), 0o644
        )
        _write_new(
            directory / "identity.json", (json.dumps(asdict(identity), indent=2) + "\n").encode(), 0o644
        )

    def _entries(self, base: Path, trusted: bool) -> list[StoredKey]:
        if not base.is_dir():
            return []
        found = []
        for directory in sorted(base.iterdir()):
            ident = directory / "identity.json"
            if not ident.is_file():
                continue
            identity = Identity(**json.loads(ident.read_text()))
            private = directory / "private.pem"
            encrypted = private.is_file() and b"ENCRYPTED" in private.read_bytes()[:64]
            found.append(StoredKey(identity, directory, private.is_file() and not trusted, encrypted))
        return found

    def own_keys(self) -> list[StoredKey]:
        return self._entries(self.keys_dir, trusted=False)

    def trusted_keys(self) -> list[StoredKey]:
        return self._entries(self.trusted_dir, trusted=True)

    def trusted_fingerprints(self) -> set[str]:
        return {k.identity.fingerprint for k in self.trusted_keys()}

    def find(self, ref: str, *, own_only: bool = False) -> StoredKey:
        """One key by fingerprint or unique prefix, own keys first."""
        prefix = normalize_fp(ref)
        pools = [self.own_keys()] if own_only else [self.own_keys(), self.trusted_keys()]
        for pool in pools:
            hits = [k for k in pool if k.identity.fingerprint[len(FP_PREFIX) :].startswith(prefix)]
            if len(hits) > 1:
                raise UsageError(
                    f"key '{ref}' is ambiguous ({len(hits)} keys match)", "give more of the fingerprint"
                )
            if hits:
                return hits[0]
        raise KeyError_(f"no key '{ref}' in {self.home}", "see `sealbox keys list`")

    # -- using a private key ----------------------------------------------------
    def load_signer(self, ref: str | None, passphrase: bytes | None = None) -> Signer:
        """The private key named by `ref` (or the only one in the store), safety-checked."""
        if ref is None:
            own = self.own_keys()
            if not own:
                raise KeyError_(
                    f"no signing key in {self.home}",
                    "create one with `sealbox keys generate --name ... --role ... --org ...`",
                )
            if len(own) > 1:
                raise UsageError(f"{len(own)} keys in {self.home}; choose one with --key FP")
            stored = own[0]
        else:
            stored = self.find(ref, own_only=True)
        return load_private_key(stored.directory / "private.pem", stored.identity, passphrase)

    # -- trust ------------------------------------------------------------------
    def trust(self, pubkey_file: Path, name: str = "", role: str = "", organization: str = "") -> Identity:
        try:
            data = pubkey_file.read_bytes()
        except OSError as exc:
            raise KeyError_(f"cannot read public key {pubkey_file}: {exc.strerror}") from exc
        public = load_public_pem(data, str(pubkey_file))
        fp = fingerprint(public)
        sibling = pubkey_file.parent / "identity.json"
        if not name and sibling.is_file():
            known = json.loads(sibling.read_text())
            if known.get("fingerprint") == fp:
                name, role, organization = known["name"], known["role"], known["organization"]
        identity = Identity(name or "unknown", role, organization, fp)
        directory = self.trusted_dir / fp[len(FP_PREFIX) :]
        if directory.exists():
            return identity
        directory.mkdir(parents=True)
        self._write_public(directory, public, identity)
        return identity

    def untrust(self, ref: str) -> Identity:
        prefix = normalize_fp(ref)
        hits = [k for k in self.trusted_keys() if k.identity.fingerprint[len(FP_PREFIX) :].startswith(prefix)]
        if len(hits) != 1:
            raise KeyError_(f"no single trusted key matches '{ref}'", "see `sealbox keys list`")
        for f in hits[0].directory.iterdir():
            f.unlink()
        hits[0].directory.rmdir()
        return hits[0].identity


def load_private_key(path: Path, identity: Identity, passphrase: bytes | None) -> Signer:
    """Refuse keys that others can read, say plainly when the passphrase is wrong or missing."""
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise KeyError_(f"private key {path} is missing") from exc
    data = path.read_bytes()
    encrypted = b"ENCRYPTED" in data[:64]
    if stat.S_IMODE(st.st_mode) & 0o077:
        if keeps_permissions(path.parent):
            raise KeyError_(
                f"private key {path} is readable by group or others (mode {stat.S_IMODE(st.st_mode):04o})",
                f"run `chmod 600 {path}` if it has not leaked, otherwise make a new key",
            )
        if not encrypted:  # on a disk without permissions only a passphrase protects it
            raise KeyError_(
                f"private key {path} has no passphrase and is on a disk without file permissions "
                "(exFAT, FAT), where anyone can read it",
                _NO_PERMISSIONS_HINT,
            )
    if encrypted and not passphrase:
        raise KeyError_(f"private key {path} is encrypted", "give its passphrase with --passphrase-file")
    try:
        key = serialization.load_pem_private_key(data, passphrase if encrypted else None)
    except (ValueError, TypeError) as exc:
        if encrypted:
            raise KeyError_(f"wrong passphrase for private key {path}") from exc
        raise KeyError_(f"private key {path} is not a readable PKCS#8 PEM key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyError_(f"private key {path} is not an Ed25519 key")
    if fingerprint(key.public_key()) != identity.fingerprint:
        raise KeyError_(f"private key {path} does not match its identity.json")
    return Signer(identity, key)


def read_passphrase_file(path: Path | None) -> bytes | None:
    """First line of a passphrase file (so `echo secret > f` works), or None."""
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read passphrase file {path}: {exc.strerror}") from exc
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if not line:
        raise UsageError(f"passphrase file {path} is empty")
    return line
