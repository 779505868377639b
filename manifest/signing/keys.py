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

from manifest.errors import KeyError_, UnsafeKeyStore, UsageError
from manifest.signing import minisign

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
    contact: str = ""  # phone or e-mail (SPEC §4.2 actor.contact); older keys have none

    def as_actor(self) -> dict[str, str]:
        actor = {
            "name": self.name,
            "role": self.role,
            "organization": self.organization,
            "key": self.fingerprint,
        }
        if self.contact:
            actor["contact"] = self.contact
        return actor


@dataclass(frozen=True)
class Signer:
    """A loaded private key with its identity. Never serialized, never enters a bundle."""

    identity: Identity
    private: Ed25519PrivateKey
    # The key store the key was loaded from: where this actor's custody receipts are kept.
    home: Path | None = None

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


def _owner_problem(st: os.stat_result) -> str | None:
    if st.st_uid not in (os.geteuid(), 0):
        return f"is owned by another user (uid {st.st_uid})"
    return None


def check_private_dir(path: Path, what: str) -> None:
    """StrictModes for a directory whose content decides trust or holds secrets: refuse one that
    another user owns or that group/others may write (they could plant or swap keys). Root-owned
    is fine; on a disk without permissions (exFAT, FAT) the passphrase rule protects keys instead."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UnsafeKeyStore(f"{what} {path} cannot be checked: {exc.strerror}") from exc
    owner = _owner_problem(st)
    if owner:
        raise UnsafeKeyStore(
            f"{what} {path} {owner}: another user could plant or swap keys there",
            f"run `chown -R $(id -un) {path}` if you trust its content, or use a key store you own",
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022 and keeps_permissions(path):
        raise UnsafeKeyStore(
            f"{what} {path} is writable by group or others (mode {mode:04o}): anyone could plant or "
            "swap keys there",
            f"run `chmod go-w {path}` if its content has not been changed by others",
        )


def check_key_file(path: Path, what: str) -> None:
    """A key file another user owns or can write could have been swapped: refuse it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeKeyStore(f"{what} {path} is a symbolic link", "keep the key itself in the key store")
    owner = _owner_problem(st)
    if owner:
        raise UnsafeKeyStore(
            f"{what} {path} {owner}: it could have been swapped",
            f"run `chown $(id -un) {path}` if you are sure it is yours, otherwise make a new key",
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022 and keeps_permissions(path.parent):
        raise UnsafeKeyStore(
            f"{what} {path} is writable by group or others (mode {mode:04o}): it could have been swapped",
            f"run `chmod go-w {path}` if it has not been changed, otherwise make a new key",
        )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    path.chmod(mode)


@dataclass(frozen=True)
class StoreWarning:
    """A store entry that was skipped (malformed, unsafe): named, never fatal to the rest."""

    path: Path
    problem: str

    def line(self) -> str:
        return f"key store entry {self.path} skipped: {self.problem}"


class KeyStore:
    """`$SEALBOX_HOME` (default `~/.config/sealbox`): `keys/<hex>/`, `trusted/<hex>/`, `tsa/*.pem`
    and `receipts/<bundle id>/`.

    A trusted or own key is its `public.pem`: the fingerprint is always computed from the key's
    bytes. `identity.json` only names the holder, and only when its fingerprint is that key's."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.keys_dir = home / "keys"
        self.trusted_dir = home / "trusted"
        self.tsa_dir = home / "tsa"
        self.warnings: list[StoreWarning] = []

    @classmethod
    def default(cls) -> KeyStore:
        env = os.environ.get("SEALBOX_HOME")
        return cls(Path(env) if env else Path.home() / ".config" / "sealbox")

    def check(self) -> None:
        """Refuse (UnsafeKeyStore) a store whose directories others own or may write."""
        check_private_dir(self.home, "key store")
        for directory, what in (
            (self.keys_dir, "key directory"),
            (self.trusted_dir, "trusted key directory"),
            (self.tsa_dir, "trusted TSA directory"),
            (self.home / "receipts", "receipt directory"),
        ):
            check_private_dir(directory, what)

    def _make_dir(self, directory: Path, mode: int = 0o700) -> None:
        if not self.home.exists():
            self.home.mkdir(parents=True, mode=0o700)
        self.check()
        directory.mkdir(parents=True, exist_ok=True, mode=mode)

    # -- generating and listing -------------------------------------------------
    def generate(
        self,
        name: str,
        role: str,
        organization: str,
        passphrase: bytes | None = None,
        contact: str = "",
    ) -> StoredKey:
        if not name.strip():
            raise UsageError("a key needs a holder name", "pass --name")
        self._make_dir(self.keys_dir)
        if not passphrase and not keeps_permissions(self.keys_dir):
            raise UsageError(
                f"{self.keys_dir} is on a disk without file permissions (exFAT, FAT): anyone could "
                "read a private key there without a passphrase",
                _NO_PERMISSIONS_HINT,
            )
        private = Ed25519PrivateKey.generate()
        identity = Identity(name, role, organization, fingerprint(private.public_key()), contact.strip())
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

    def _entry(self, directory: Path, trusted: bool) -> StoredKey:
        """One store entry from its public key; raises StoreEntryError naming what is wrong."""
        if directory.is_symlink() or not directory.is_dir():
            raise StoreEntryError("not a directory")
        check_private_dir(directory, "key directory")
        pem = directory / "public.pem"
        check_key_file(pem, "public key")
        try:
            data = _read_small(pem)
        except OSError as exc:
            raise StoreEntryError(f"public.pem cannot be read ({exc.strerror or exc})") from exc
        try:
            public = load_public_pem(data, "public.pem")
        except KeyError_ as exc:
            raise StoreEntryError(exc.message) from exc
        fp = fingerprint(public)
        if directory.name != fp[len(FP_PREFIX) :]:
            raise StoreEntryError(f"the directory name is not the fingerprint of its public.pem ({fp})")
        identity = _advisory_identity(directory / "identity.json", fp)
        private = directory / "private.pem"
        has_private = not trusted and private.is_file()
        encrypted = has_private and b"ENCRYPTED" in _read_small(private)[:64]
        return StoredKey(identity, directory, has_private, encrypted)

    def _entries(self, base: Path, trusted: bool) -> list[StoredKey]:
        if not base.is_dir():
            return []
        self.check()
        found = []
        for directory in sorted(base.iterdir()):
            try:
                found.append(self._entry(directory, trusted))
            except StoreEntryError as exc:
                self._warn(directory, exc.message)
            except UnsafeKeyStore as exc:
                if not trusted:
                    raise  # one's own keys: refuse, as for a signing key
                self._warn(directory, exc.message)
        return found

    def _warn(self, path: Path, problem: str) -> None:
        warning = StoreWarning(path, problem)
        if warning not in self.warnings:
            self.warnings.append(warning)

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
            chosen = self.default_fingerprint()
            hits = [k for k in own if k.identity.fingerprint == chosen] if len(own) > 1 else own
            if not hits:
                raise UsageError(
                    f"{len(own)} keys in {self.home}; choose one with --key FP",
                    "or make one the default: `sealbox keys default FP` (see `sealbox keys list`)",
                )
            stored = hits[0]
        else:
            stored = self.find(ref, own_only=True)
        signer = load_private_key(stored.directory / "private.pem", stored.identity, passphrase)
        return Signer(signer.identity, signer.private, self.home)

    # -- the default key and deleting keys ---------------------------------------------
    @property
    def default_file(self) -> Path:
        return self.home / "default"

    def default_fingerprint(self) -> str | None:
        """The own key used when no --key is given and the store holds several (SPEC §5)."""
        try:
            text = _read_small(self.default_file).decode("ascii", "replace").strip()
        except OSError:
            return None
        return FP_PREFIX + text if text else None

    def set_default(self, ref: str) -> Identity:
        stored = self.find(ref, own_only=True)
        self._make_dir(self.keys_dir)
        tmp = self.home / ".default.tmp"
        tmp.unlink(missing_ok=True)
        _write_new(tmp, stored.identity.fingerprint[len(FP_PREFIX) :].encode() + b"\n", 0o644)
        tmp.replace(self.default_file)
        return stored.identity

    def signed_log(self) -> Path:
        return self.home / "signed.jsonl"

    def record_signed(self, fp: str, bundle_id: str, case: str, bundle_path: Path) -> None:
        """Note that key `fp` signed events of the bundle at `bundle_path` (what `keys delete`
        checks); one JSON line, appended."""
        line = json.dumps(
            {"key": fp, "bundle": bundle_id, "case": case, "path": str(bundle_path)}, sort_keys=True
        )
        with self.signed_log().open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def signed_bundles(self, fp: str) -> list[str]:
        """Paths of bundles on this machine holding events signed by `fp`: from the signing log
        and the custody receipts in this store; only those that still exist."""
        found: list[str] = []
        candidates: list[str] = []
        try:
            for raw in self.signed_log().read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(row, dict) and row.get("key") == fp:
                    candidates.append(str(row.get("path", "")))
        except OSError:
            pass
        receipts = self.home / "receipts"
        if receipts.is_dir():
            for path in sorted(receipts.glob("*/*.json")):
                try:
                    doc = json.loads(_read_small(path))
                except (OSError, ValueError):
                    continue
                signer = doc.get("signer") if isinstance(doc, dict) else None
                if isinstance(signer, dict) and signer.get("key") == fp:
                    candidates.append(str(doc.get("bundle_path", "")))
        for candidate in candidates:
            sealed = candidate.removesuffix(".incomplete")
            for where in (candidate, sealed):
                if where and Path(where).is_dir() and where not in found:
                    found.append(where)
        return found

    def delete(self, ref: str, *, force: bool = False) -> tuple[Identity, list[str]]:
        """Remove an own key (or a trusted one); refused while a local bundle holds events it
        signed, unless `force` (the bundles stay verifiable by anyone who trusts its public key)."""
        stored = self.find(ref)
        fp = stored.identity.fingerprint
        used = self.signed_bundles(fp)
        if used and not force:
            more = f" and {len(used) - 1} more" if len(used) > 1 else ""
            raise UsageError(
                f"key {fp} ({stored.identity.name}) signed events of {used[0]}{more}",
                "keep it (export its public key first: `sealbox keys export-public`), or pass --force",
            )
        for f in stored.directory.iterdir():
            f.unlink()
        stored.directory.rmdir()
        if self.default_fingerprint() == fp:
            self.default_file.unlink(missing_ok=True)
        return stored.identity, used

    # -- trust ------------------------------------------------------------------
    def trust(self, pubkey_file: Path, name: str = "", role: str = "", organization: str = "") -> Identity:
        try:
            data = _read_small(pubkey_file)
        except OSError as exc:
            raise KeyError_(f"cannot read public key {pubkey_file}: {exc.strerror}") from exc
        public = load_public_pem(data, str(pubkey_file))
        fp = fingerprint(public)
        contact = ""
        if not name:
            known = _advisory_identity(pubkey_file.parent / "identity.json", fp)
            name, role, organization, contact = known.name, known.role, known.organization, known.contact
        return self.trust_public(public, Identity(name or "unknown", role, organization, fp, contact))

    def trust_public(self, public: Ed25519PublicKey, identity: Identity) -> Identity:
        """Keep `public` as a trusted key under the names of `identity` (its fingerprint is
        computed from the key, never taken from `identity`)."""
        fp = fingerprint(public)
        identity = Identity(
            identity.name or "unknown", identity.role, identity.organization, fp, identity.contact
        )
        self._make_dir(self.trusted_dir)
        directory = self.trusted_dir / fp[len(FP_PREFIX) :]
        if directory.exists():
            return identity
        directory.mkdir(mode=0o755)
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

    # -- timestamp authorities -------------------------------------------------------
    def trust_tsa(self, cert_file: Path) -> Path:
        """Keep a TSA's CA (or TSA) certificate as `tsa/<sha256 of its DER>.pem`."""
        from cryptography import x509

        try:
            data = _read_small(cert_file)
        except OSError as exc:
            raise KeyError_(f"cannot read certificate {cert_file}: {exc.strerror}") from exc
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise KeyError_(f"{cert_file} is not a PEM X.509 certificate") from exc
        self._make_dir(self.tsa_dir, 0o755)
        der = b"".join(c.public_bytes(serialization.Encoding.DER) for c in certs)
        target = self.tsa_dir / f"{hashlib.sha256(der).hexdigest()[:32]}.pem"
        if not target.exists():
            pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
            _write_new(target, pem, 0o644)
        return target

    def tsa_certificates(self) -> list[Path]:
        """The trusted TSA certificate files (malformed or unsafe ones are warned about, skipped)."""
        if not self.tsa_dir.is_dir():
            return []
        self.check()
        found = []
        for path in sorted(self.tsa_dir.glob("*.pem")):
            try:
                check_key_file(path, "TSA certificate")
            except UnsafeKeyStore as exc:
                self._warn(path, exc.message)
                continue
            found.append(path)
        return found


class StoreEntryError(Exception):
    """Why one store entry is unusable (internal: becomes a StoreWarning)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_SMALL = 1 << 20


def _read_small(path: Path) -> bytes:
    """A key-sized file, refusing links and anything that is not a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        return os.read(fd, _SMALL)
    finally:
        os.close(fd)


def _advisory_identity(path: Path, fp: str) -> Identity:
    """The Identity an identity.json gives for key `fp` (see `_advisory_names`), with its contact."""
    name, role, organization = _advisory_names(path, fp)
    contact = ""
    if name != "unknown" or role or organization:
        try:
            known = json.loads(_read_small(path).decode("utf-8"))
            value = known.get("contact", "") if isinstance(known, dict) else ""
            contact = value if isinstance(value, str) else ""
        except (OSError, ValueError, RecursionError):
            contact = ""
    return Identity(name, role, organization, fp, contact)


def _advisory_names(path: Path, fp: str) -> tuple[str, str, str]:
    """(name, role, organization) from an identity.json that names the key `fp`; otherwise
    ("unknown", "", ""): metadata about another key, or garbage, names nobody."""
    try:
        known = json.loads(_read_small(path).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return "unknown", "", ""
    if not isinstance(known, dict) or known.get("fingerprint") != fp:
        return "unknown", "", ""
    fields = [known.get(k, "") for k in ("name", "role", "organization")]
    if not all(isinstance(v, str) for v in fields):
        return "unknown", "", ""
    return fields[0] or "unknown", fields[1], fields[2]


def load_private_key(path: Path, identity: Identity, passphrase: bytes | None) -> Signer:
    """Refuse keys that others can read, say plainly when the passphrase is wrong or missing."""
    try:
        st = os.lstat(path)
    except FileNotFoundError as exc:
        raise KeyError_(f"private key {path} is missing") from exc
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise UnsafeKeyStore(
            f"private key {path} is not a regular file (a link?)", "keep the key itself in the key store"
        )
    owner = _owner_problem(st)
    if owner:
        raise UnsafeKeyStore(
            f"private key {path} {owner}: it could have been swapped",
            "make a new key with `sealbox keys generate`; never sign with a key another user controls",
        )
    data = _read_small(path)
    encrypted = b"ENCRYPTED" in data[:64]
    if stat.S_IMODE(st.st_mode) & 0o077:
        if keeps_permissions(path.parent):
            mode = stat.S_IMODE(st.st_mode)
            how = "readable" if mode & 0o044 else "writable"  # writable: it could have been swapped
            raise KeyError_(
                f"private key {path} is {how} by group or others (mode {mode:04o})",
                f"run `chmod 600 {path}` if it has not leaked or been changed, otherwise make a new key",
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
        raise KeyError_(f"private key {path} does not match the public.pem beside it")
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
