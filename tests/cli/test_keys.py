"""Key store: generate, list, show, export, trust; refusals each one line with the right exit."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from tests.support.builders import make_key, run_on_exfat
from tests.support.env import REPO, require_tool


def test_generate_list_show_export_trust_untrust(cli, tmp_path):
    fp = make_key(cli)
    listed = json.loads(cli("keys", "list", "--json", check=True).stdout)
    assert listed == [
        {
            "type": "own",
            "name": "Ann Example",
            "role": "IT responder",
            "organization": "City IT",
            "fingerprint": fp,
            "contact": "",
            "encrypted": False,
        }
    ]
    shown = cli("keys", "show", fp[7:19], check=True).stdout
    assert fp in shown and "BEGIN PUBLIC KEY" in shown
    out = tmp_path / "pub"
    cli("keys", "export-public", fp, "--out", out, check=True)
    assert sorted(p.name for p in out.iterdir()) == ["identity.json", "minisign.pub", "public.pem"]
    private = next((cli.home / "keys").iterdir()) / "private.pem"
    assert private.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in private.read_bytes()
    assert not any(b"PRIVATE" in p.read_bytes() for p in out.iterdir())

    other = cli.__class__(tmp_path / "other-home")
    trusted = other("keys", "trust", out / "public.pem", check=True)
    assert fp in trusted.stdout and "Ann Example" in trusted.stdout
    assert json.loads(other("keys", "list", "--json", check=True).stdout)[0]["type"] == "trusted"
    other("keys", "untrust", fp, check=True)
    assert json.loads(other("keys", "list", "--json", check=True).stdout) == []


def test_fingerprint_is_sha256_of_raw_public_key_per_openssl(cli):
    openssl = require_tool("openssl")
    fp = make_key(cli)
    pem = next((cli.home / "keys").iterdir()) / "public.pem"
    der = subprocess.run(
        [openssl, "pkey", "-pubin", "-in", str(pem), "-outform", "DER"], capture_output=True, check=True
    ).stdout
    assert fp == "SHA256:" + hashlib.sha256(der[-32:]).hexdigest()


def test_encrypted_key_wrong_and_missing_passphrase(cli, tmp_path):
    good = tmp_path / "pass"
    good.write_text("correct horse\n")
    bad = tmp_path / "wrong"
    bad.write_text("battery staple\n")
    make_key(cli, passphrase_file=good)
    assert b"ENCRYPTED" in next((cli.home / "keys").iterdir()).joinpath("private.pem").read_bytes()
    src = tmp_path / "f.txt"
    src.write_text("x")
    out = tmp_path / "out"
    out.mkdir()
    proc = cli("collect", "--case", "C-1", "--out", out, "--passphrase-file", bad, src)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "wrong passphrase" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = cli("collect", "--case", "C-1", "--out", out, src)
    assert proc.returncode == 1 and "is encrypted" in proc.stderr
    assert list(out.iterdir()) == []
    cli("collect", "--case", "C-1", "--out", out, "--passphrase-file", good, src, check=True)


def test_group_readable_private_key_is_refused(cli, tmp_path):
    make_key(cli)
    private = next((cli.home / "keys").iterdir()) / "private.pem"
    private.chmod(0o640)
    src = tmp_path / "f.txt"
    src.write_text("x")
    proc = cli("collect", "--case", "C-1", "--out", tmp_path, src)
    assert proc.returncode == 1
    assert "readable by group or others" in proc.stderr and "chmod 600" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_and_unknown_key(cli, tmp_path):
    src = tmp_path / "f.txt"
    src.write_text("x")
    proc = cli("collect", "--case", "C-1", "--out", tmp_path, src)
    assert proc.returncode == 1 and "no signing key" in proc.stderr and "keys generate" in proc.stderr
    make_key(cli)
    proc = cli("collect", "--case", "C-1", "--out", tmp_path, "--key", "SHA256:" + "ab" * 32, src)
    assert proc.returncode == 1 and "no key" in proc.stderr
    proc = cli("keys", "show", "not-hex!")
    assert proc.returncode == 2 and "not a key fingerprint" in proc.stderr


def test_keys_on_an_exfat_stick_need_a_passphrase(cli, tmp_path):
    # Keys belong on the responder's own media, which is often exFAT: no file permissions, so
    # the mode check means nothing there and only a passphrase keeps the private key private.
    (tmp_path / "pass").write_text("correct horse battery staple\n")
    (tmp_path / "f").write_text("x\n")
    (tmp_path / "out").mkdir()
    agent = f"{sys.executable} -m agent"
    proc = run_on_exfat(
        tmp_path,
        f'cd {REPO} && export SEALBOX_HOME="$STICK/sealbox" && '
        f"if {agent} keys generate --name A --role r --org o; then exit 3; fi && "
        f"{agent} keys generate --name A --role r --org o --passphrase-file {tmp_path}/pass && "
        f"{agent} collect --case C-STICK --out {tmp_path}/out --passphrase-file {tmp_path}/pass {tmp_path}/f",
        {k: v for k, v in cli.env.items() if k != "SEALBOX_HOME"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "is on a disk without file permissions (exFAT, FAT)" in proc.stderr
    assert "Traceback" not in proc.stderr
    (bundle,) = (tmp_path / "out").iterdir()
    assert bundle.name.startswith("C-STICK_")


def test_garbage_in_the_unsigned_minisign_files_is_a_finding_never_a_crash(cli, tmp_path, out_dir):
    from manifest.signing.minisign import verify_prehashed
    from tests.support.builders import collect, writable_copy

    make_key(cli)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    bundle = collect(cli, out_dir, src)
    good_sig = (bundle / "tagmanifest-sha256.txt.minisig").read_bytes()
    good_pub = (bundle / "keys/signer.minisign.pub").read_bytes()
    data = (bundle / "tagmanifest-sha256.txt").read_bytes()
    assert verify_prehashed(good_pub, good_sig, data) is None
    broken = {
        "non-utf8 comment": (good_pub, good_sig.replace(b"untrusted comment:", b"untrusted \xff\xfe:")),
        "non-utf8 key": (good_pub + b"\xff", good_sig),
        "bad base64": (good_pub, good_sig.replace(b"\n", b"\n!!", 1)),
        "short": (good_pub, b"untrusted comment: x\n"),
        "huge": (good_pub, good_sig + b"A" * 100_000),
        "empty": (b"", b""),
        "wrong length": (good_pub.replace(good_pub.splitlines()[1], b"RWQ="), good_sig),
    }
    for name, (pub, sig) in broken.items():
        assert verify_prehashed(pub, sig, data) is not None, name
    (tmp_path / "copies").mkdir()
    copy = writable_copy(bundle, tmp_path / "copies")
    (copy / "tagmanifest-sha256.txt.minisig").write_bytes(broken["non-utf8 comment"][1])
    proc = cli("verify", copy)
    assert proc.returncode == 1 and "FAIL minisign-invalid: tagmanifest-sha256.txt.minisig" in proc.stdout
    assert "Traceback" not in proc.stderr
    (copy / "tagmanifest-sha256.txt.minisig").write_bytes(good_sig)
    (copy / "keys/signer.minisign.pub").write_bytes(b"\xff\xfe\x00garbage")
    proc = cli("verify", copy)
    assert proc.returncode == 1 and "minisign-invalid" in proc.stdout and "Traceback" not in proc.stderr
    (copy / "keys/signer.minisign.pub").write_bytes(good_pub)
    with open(copy / "tagmanifest-sha256.txt.minisig", "r+b") as fh:
        fh.truncate(20 << 30)  # sparse: read no further than a minisign file can be
    proc = cli("verify", copy, timeout=60)
    assert proc.returncode == 1 and "FAIL tag-file-too-large: tagmanifest-sha256.txt.minisig" in proc.stdout


def test_default_key_and_delete_refuses_a_key_that_signed_a_local_bundle(cli, tmp_path, out_dir):
    """After Quick start's demo key, a second key made every command without --key fail; a default
    key ends that, and a key that signed evidence on this machine is not deleted by accident."""
    demo = make_key(cli, "DEMO KEY - not for evidence", "demo", "sealbox demo")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.log").write_text("line\n")
    cli("collect", "--case", "OKC-2026-0042", "--out", out_dir, src, check=True)
    mine = cli(
        "keys", "generate", "--name", "Ann Example", "--role", "IT responder", "--org", "City IT",
        "--contact", "+1 555 0100", check=True,
    )  # fmt: skip
    fp = mine.stdout.strip()
    assert "keys default" in mine.stderr
    unchosen = cli("collect", "--case", "OKC-2026-0042", "--out", out_dir, src)
    assert unchosen.returncode == 2 and "sealbox keys default FP" in unchosen.stderr
    assert "set one" in cli("keys", "default").stderr
    cli("keys", "default", fp, check=True)
    assert cli("keys", "default", check=True).stdout.strip() == fp
    assert f"{fp}  Ann Example / IT responder / City IT (default)" in cli("keys", "list", check=True).stdout
    bundle = cli("collect", "--case", "OKC-2026-0042", "--out", out_dir, src, check=True).stdout.split()[-1]
    started = json.loads(Path(bundle, "custody/custody.jsonl").read_text().splitlines()[0])
    assert started["actor"]["key"] == fp and started["actor"]["contact"] == "+1 555 0100"
    assert "contact:      +1 555 0100" in cli("keys", "show", fp, check=True).stdout

    refused = cli("keys", "delete", demo)
    assert refused.returncode == 2 and "signed events of" in refused.stderr and "--force" in refused.stderr
    assert any(k["fingerprint"] == demo for k in json.loads(cli("keys", "list", "--json").stdout))
    forced = cli("keys", "delete", demo, "--force", check=True)
    assert f"deleted {demo}" in forced.stdout and "holds events it signed" in forced.stderr
    assert [k["fingerprint"] for k in json.loads(cli("keys", "list", "--json").stdout)] == [fp]
    # A key that signed nothing here goes without --force; the default goes with its key.
    spare = make_key(cli, "Spare Key", "test", "City IT")
    cli("keys", "default", spare, check=True)
    cli("keys", "delete", spare, check=True)
    assert cli("keys", "default", check=True).stdout.strip() == fp  # the only key left
