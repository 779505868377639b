"""Key store discipline (like OpenSSH's StrictModes): a store, trusted/ or key directory others can
write or own is refused in one line naming the path and the fix; a trusted key is its public key,
never the metadata beside it; a malformed trusted entry is named and skipped."""

from __future__ import annotations

import json
import os
import shutil
from typing import TYPE_CHECKING

import pytest

from manifest.signing.keys import KeyStore, fingerprint
from tests.support.builders import collect, make_key
from tests.support.env import Cli, clear_flags, require_root

if TYPE_CHECKING:
    from pathlib import Path

NOBODY = 65534


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory):
    """Ann's store and a bundle she sealed; Bob's store trusts Ann (tests copy Bob's store)."""
    base = tmp_path_factory.mktemp("perms")
    ann = Cli(base / "ann")
    fp = make_key(ann)
    src = base / "src"
    src.mkdir()
    (src / "note.txt").write_text("evidence\n")
    out = base / "out"
    out.mkdir()
    bundle = collect(ann, out, src)
    bob = Cli(base / "bob")
    make_key(bob, "Bob Examiner", "examiner", "Lab")
    pub = base / "ann-pub"
    ann("keys", "export-public", fp, "--out", pub, check=True)
    bob("keys", "trust", pub / "public.pem", check=True)
    yield ann, bob, fp, bundle
    clear_flags(out)


@pytest.fixture
def bob(signed, tmp_path: Path) -> Cli:
    _ann, bob, _fp, _bundle = signed
    shutil.copytree(bob.home, tmp_path / "bob", symlinks=True)
    return Cli(tmp_path / "bob")


def one_refusal(proc, path: Path, fix: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and fix in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_copied_store_verifies(signed, bob) -> None:
    _ann, _bob, _fp, bundle = signed
    assert bob("verify", bundle).returncode == 0


@pytest.mark.parametrize("where", ["", "trusted", "keys", "trusted/ENTRY", "keys/ENTRY"])
@pytest.mark.parametrize("mode", [0o775, 0o757])
def test_a_directory_others_can_write_is_refused(signed, bob, where: str, mode: int) -> None:
    _ann, _bob, _fp, bundle = signed
    path = bob.home
    for part in filter(None, where.split("/")):
        path = next(path.iterdir()) if part == "ENTRY" else path / part
    path.chmod(mode)
    proc = bob("verify", bundle)
    if where.startswith("trusted/"):
        # One bad trusted entry is named and skipped, not fatal: Ann's key is then not trusted.
        assert proc.returncode == 1 and f"key store entry {path} skipped" in proc.stdout, proc.stdout
        assert "signer-untrusted" in proc.stdout
    else:
        one_refusal(proc, path, f"chmod go-w {path}")
    path.chmod(0o700)
    assert bob("verify", bundle).returncode == 0


@pytest.mark.parametrize("where", ["", "trusted", "keys"])
def test_a_directory_another_user_owns_is_refused(signed, bob, where: str) -> None:
    require_root()
    _ann, _bob, _fp, bundle = signed
    path = bob.home / where if where else bob.home
    os.chown(path, NOBODY, NOBODY)
    one_refusal(bob("verify", bundle), path, "chown")
    os.chown(path, 0, 0)  # root-owned is fine
    assert bob("verify", bundle).returncode == 0


def test_a_private_key_another_user_owns_or_can_write_is_never_used(signed, bob, tmp_path) -> None:
    require_root()
    _ann, _bob, _fp, bundle = signed
    private = next((bob.home / "keys").iterdir()) / "private.pem"
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy, symlinks=True)
    os.system(f"chmod -R u+w {copy}")
    os.chown(private, NOBODY, NOBODY)
    proc = bob("custody", "add", copy, "--event", "note", "--reason", "x")
    one_refusal(proc, private, "new key")
    os.chown(private, 0, 0)
    private.chmod(0o620)
    proc = bob("custody", "add", copy, "--event", "note", "--reason", "x")
    assert proc.returncode != 0 and str(private) in proc.stderr and "Traceback" not in proc.stderr
    assert "writable by group or others" in proc.stderr
    assert (copy / "custody/continuation.jsonl").read_bytes() == b"", "nothing was signed"
    clear_flags(copy)


def test_metadata_alone_never_makes_a_key_trusted(signed, bob) -> None:
    """identity.json naming Ann's fingerprint, with Mallory's public key (or none) beside it."""
    _ann, _bob, ann_fp, bundle = signed
    entry = bob.home / "trusted" / ann_fp[7:]
    for name in ("public.pem", "minisign.pub"):
        (entry / name).unlink()
    proc = bob("verify", bundle)
    assert proc.returncode == 1 and "signer-untrusted" in proc.stdout
    assert f"key store entry {entry} skipped" in proc.stdout
    # Mallory's key in a directory and identity.json that both claim Ann's fingerprint.
    mallory = KeyStore(bob.home.parent / "mallory")
    stored = mallory.generate("Mallory", "forger", "nowhere")
    shutil.copy(stored.directory / "public.pem", entry / "public.pem")
    proc = bob("verify", bundle)
    assert proc.returncode == 1 and "signer-untrusted" in proc.stdout
    assert "not the fingerprint of its public.pem" in proc.stdout
    assert ann_fp not in KeyStore(bob.home).trusted_fingerprints()


def test_identity_json_only_names_the_key_it_matches(signed, bob) -> None:
    _ann, _bob, ann_fp, _bundle = signed
    ident = bob.home / "trusted" / ann_fp[7:] / "identity.json"
    data = json.loads(ident.read_text())
    ident.write_text(json.dumps({**data, "fingerprint": "SHA256:" + "0" * 64, "name": "Someone Else"}))
    keys = KeyStore(bob.home).trusted_keys()
    assert [(k.identity.fingerprint, k.identity.name) for k in keys] == [(ann_fp, "unknown")]


@pytest.mark.parametrize(
    "damage",
    ["garbage-pem", "not-utf8-identity", "file-not-dir", "empty-dir", "deep-identity", "pem-is-dir"],
)
def test_a_malformed_trusted_entry_is_named_and_skipped(signed, bob, damage: str) -> None:
    _ann, _bob, ann_fp, bundle = signed
    trusted = bob.home / "trusted"
    bad = trusted / ("f" * 64)
    if damage == "file-not-dir":
        bad.write_bytes(b"\xff\x00")
    else:
        bad.mkdir(mode=0o755)
        if damage == "garbage-pem":
            (bad / "public.pem").write_bytes(b"-----BEGIN PUBLIC KEY-----\n\xff\xfe\n")
        elif damage == "not-utf8-identity":
            (bad / "public.pem").write_bytes(b"nope")
            (bad / "identity.json").write_bytes(b"\xff{")
        elif damage == "deep-identity":
            (bad / "identity.json").write_bytes(b"[" * 100_000)
        elif damage == "pem-is-dir":
            (bad / "public.pem").mkdir()
    proc = bob("verify", bundle)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)  # Ann's bundle still verifies
    assert f"key store entry {bad} skipped" in proc.stdout and "Traceback" not in proc.stderr
    listed = bob("keys", "list")
    assert listed.returncode == 0 and ann_fp in listed.stdout and f"{bad} skipped" in listed.stderr


def test_fingerprint_is_computed_from_the_key_bytes(signed, bob) -> None:
    _ann, _bob, ann_fp, _bundle = signed
    from manifest.signing.keys import load_public_pem

    (entry,) = KeyStore(bob.home).trusted_keys()
    public = load_public_pem((entry.directory / "public.pem").read_bytes(), "x")
    assert entry.identity.fingerprint == fingerprint(public) == ann_fp


def test_a_new_store_is_private(tmp_path) -> None:
    cli = Cli(tmp_path / "fresh")
    old = os.umask(0o002)  # a group-writable umask must not leak into the store
    try:
        make_key(cli)
    finally:
        os.umask(old)
    assert (tmp_path / "fresh").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "fresh" / "keys").stat().st_mode & 0o022 == 0
