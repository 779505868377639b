"""RFC 3161: a real TSA on loopback (`openssl ts -reply` behind an HTTP handler, test CA made here)."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from manifest.signing.timestamp import request_timestamp, timestamp_findings, verify_timestamp
from tests.support.custody import collect_bundle, make_person
from tests.support.env import Cli, clear_flags, require_tool
from tests.support.tsa import make_tsa, openssl_stamp


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory):
    """A test CA, a TSA certificate, and `openssl ts -reply` answering HTTP POSTs on 127.0.0.1."""
    openssl = require_tool("openssl")
    d = tmp_path_factory.mktemp("tsa")
    make_tsa(d, openssl)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            proc = subprocess.run(
                [
                    openssl,
                    "ts",
                    "-reply",
                    "-config",
                    str(d / "tsa.cnf"),
                    "-queryfile",
                    "/dev/stdin",
                    "-out",
                    "/dev/stdout",
                ],
                input=query,
                capture_output=True,
                check=False,
            )
            self.send_response(200 if proc.returncode == 0 else 500)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.end_headers()
            self.wfile.write(proc.stdout)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {
        "url": f"http://127.0.0.1:{server.server_port}/tsa",
        "ca": d / "ca.pem",
        "openssl": openssl,
        "dir": d,
    }
    server.shutdown()


def openssl_ts_verify(tsa: dict, tsr: Path, data: Path) -> None:
    """The by-hand check a court expert would run."""
    check = subprocess.run(
        [tsa["openssl"], "ts", "-verify", "-in", str(tsr), "-data", str(data), "-CAfile", str(tsa["ca"])],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and "Verification: OK" in check.stdout, check.stderr


def _other_ca(tsa: dict, tmp_path: Path, name: str) -> Path:
    """A self-signed CA certificate (other-ca.pem in `tmp_path`) that is not the test TSA's."""
    other_ca = tmp_path / "other-ca.pem"
    subprocess.run(
        [
            tsa["openssl"],
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(tmp_path / "k"),
            "-out",
            str(other_ca),
            "-subj",
            f"/CN={name}",
        ],
        check=True,
        capture_output=True,
    )
    return other_ca


def test_request_and_verify_against_loopback_tsa(tsa, tmp_path: Path) -> None:
    data = b"tagmanifest bytes\n"
    reply = request_timestamp(tsa["url"], data)
    assert verify_timestamp(reply, data, tsa["ca"]) == []
    assert [f.kind for f in verify_timestamp(reply, b"other data", tsa["ca"])] == ["timestamp-mismatch"]
    other_ca = _other_ca(tsa, tmp_path, "Other")
    assert [f.kind for f in verify_timestamp(reply, data, other_ca)] == ["timestamp-invalid"]


def test_export_with_tsa_keeps_tsr_checked_by_openssl(tsa, tmp_path: Path) -> None:
    it = make_person(tmp_path, "it")
    (tmp_path / "b").mkdir()
    (tmp_path / "pkg").mkdir()
    bundle = collect_bundle(it, tmp_path, tmp_path / "b")
    proc = it.cli(
        "export",
        bundle,
        "--to",
        "Paula Police, City PD",
        "--out",
        tmp_path / "pkg",
        "--tsa",
        tsa["url"],
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["timestamped"] is True
    tsr = bundle / "tagmanifest-sha256.txt.tsr"
    openssl_ts_verify(tsa, tsr, bundle / "tagmanifest-sha256.txt")
    assert timestamp_findings(bundle, tsa["ca"]) == []
    assert it.cli("verify", bundle).returncode == 0, "the .tsr sits outside the tagmanifest"
    clear_flags(tmp_path / "b")


def test_unreachable_tsa_is_a_clear_error(tmp_path: Path) -> None:
    from manifest.errors import BundleError

    with pytest.raises(BundleError) as err:
        request_timestamp("http://127.0.0.1:9/tsa", b"x")
    assert "did not answer" in err.value.message


def test_collect_with_tsa_seals_a_timestamp_that_verify_and_openssl_check(tsa, tmp_path: Path) -> None:
    ida = make_person(tmp_path, "it")
    src = tmp_path / "src"
    src.mkdir()
    (src / "auth.log").write_text("Nov 24 sshd: Failed password for root\n")
    out = tmp_path / "out"
    out.mkdir()
    try:
        proc = ida.cli("collect", "--case", "C-TSA", "--out", out, "--tsa", tsa["url"], src, check=True)
        bundle = Path(proc.stdout.strip().splitlines()[-1])
        tsr = bundle / "tagmanifest-sha256.txt.tsr"
        assert tsr.is_file() and "tsr" not in (bundle / "tagmanifest-sha256.txt").read_text()
        verified = ida.cli("verify", "--tsa-ca", tsa["ca"], bundle)
        assert verified.returncode == 0, verified.stdout
        openssl_ts_verify(tsa, tsr, bundle / "tagmanifest-sha256.txt")
        # A timestamp over other data is a finding naming the .tsr.
        copy = tmp_path / "copy"
        copy.mkdir()
        subprocess.run(["cp", "-r", str(bundle), str(copy)], check=True)
        forged = copy / bundle.name
        subprocess.run(["chmod", "-R", "u+w", str(forged)], check=True)
        (forged / "tagmanifest-sha256.txt.tsr").write_bytes(request_timestamp(tsa["url"], b"other data"))
        found = json.loads(ida.cli("verify", "--json", forged).stdout)["findings"]
        assert [(f["kind"], f["where"]) for f in found] == [
            ("timestamp-mismatch", "tagmanifest-sha256.txt.tsr")
        ]
        # A TSA that does not answer costs the timestamp, never the seal.
        late = ida.cli("collect", "--case", "C-TSA2", "--out", out, "--tsa", "http://127.0.0.1:9/tsa", src)
        assert late.returncode == 0 and "sealed without a trusted timestamp" in late.stderr
        assert ida.cli("verify", Path(late.stdout.strip().splitlines()[-1])).returncode == 0
    finally:
        clear_flags(out)


# -- a .tsr counts only when signature, imprint and chain all verify -----------------------------


def unsigned_tsr(data: bytes) -> bytes:
    """What an attacker writes: status 'granted' and the right SHA-256 imprint, no token, no
    signature (58 bytes: enough for a parser that only looks for the imprint)."""
    import hashlib

    algorithm = bytes.fromhex("300d06096086480165030402010500")
    imprint = b"\x30\x31" + algorithm + b"\x04\x20" + hashlib.sha256(data).digest()
    body = b"\x30\x03\x02\x01\x00" + imprint
    return b"\x30" + bytes([len(body)]) + body


@pytest.fixture(scope="module")
def stamped(tsa, tmp_path_factory: pytest.TempPathFactory):
    """A bundle sealed with a real timestamp from the loopback TSA."""
    base = tmp_path_factory.mktemp("stamped")
    ida = make_person(base, "it")
    src = base / "src"
    src.mkdir()
    (src / "auth.log").write_text("sshd: Failed password for root\n")
    out = base / "out"
    out.mkdir()
    proc = ida.cli("collect", "--case", "C-TS", "--out", out, "--tsa", tsa["url"], src, check=True)
    yield ida, Path(proc.stdout.strip().splitlines()[-1])
    clear_flags(out)


def _copy_with_tsr(bundle: Path, tmp_path: Path, tsr: bytes | None) -> Path:
    from tests.support.builders import writable_copy

    copy = writable_copy(bundle, tmp_path)
    if tsr is not None:
        (copy / "tagmanifest-sha256.txt.tsr").unlink()
        (copy / "tagmanifest-sha256.txt.tsr").write_bytes(tsr)
    return copy


def _notes(proc) -> list[str]:
    return json.loads(proc.stdout)["notes"]


def test_a_real_timestamp_without_a_trusted_tsa_is_present_not_verified(stamped, tmp_path) -> None:
    ida, bundle = stamped
    proc = ida.cli("verify", "--json", bundle)
    assert proc.returncode == 0, proc.stdout
    (note,) = [n for n in _notes(proc) if n.startswith("timestamp")]
    assert note.startswith("timestamp present, not verified (no trusted TSA certificate")
    report = tmp_path / "r.html"
    ida.cli("report", bundle, "--out", report, check=True)
    html = report.read_text()
    assert "timestamp present, not verified" in html and "yes (tagmanifest" not in html


def test_a_tsa_trusted_in_the_key_store_verifies_the_timestamp(tsa, stamped, tmp_path) -> None:
    ida, bundle = stamped
    home = tmp_path / "home"
    shutil.copytree(ida.cli.home, home, symlinks=True)
    cli = Cli(home)
    assert "trusted TSA certificate kept as" in cli("keys", "trust-tsa", tsa["ca"], check=True).stdout
    proc = cli("verify", "--json", bundle)
    assert proc.returncode == 0, proc.stdout
    (note,) = [n for n in _notes(proc) if n.startswith("timestamp")]
    assert note.startswith("timestamp verified: tagmanifest-sha256.txt existed at 20") and "Test TSA" in note
    cli("report", bundle, "--out", tmp_path / "r.html", check=True)
    assert "yes, timestamp verified" in (tmp_path / "r.html").read_text()


def test_an_unsigned_60_byte_tsr_is_a_finding(tsa, stamped, tmp_path) -> None:
    ida, bundle = stamped
    data = (bundle / "tagmanifest-sha256.txt").read_bytes()
    fake = unsigned_tsr(data)
    assert len(fake) < 64
    copy = _copy_with_tsr(bundle, tmp_path, fake)
    for extra in ((), ("--tsa-ca", tsa["ca"])):
        proc = ida.cli("verify", "--json", *extra, copy)
        assert proc.returncode == 1, proc.stdout
        kinds = [f["kind"] for f in json.loads(proc.stdout)["findings"]]
        assert kinds == ["timestamp-unreadable"]
    ida.cli("report", copy, "--out", tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert (
        "Trusted timestamp" in html
        and "INVALID" in html
        and "yes" not in html.split("Trusted timestamp")[1][:40]
    )


def test_a_token_over_other_data_is_a_mismatch(tsa, stamped, tmp_path) -> None:
    ida, bundle = stamped
    copy = _copy_with_tsr(bundle, tmp_path, openssl_stamp(tsa, b"other data", tmp_path))
    proc = ida.cli("verify", "--json", copy)
    assert [f["kind"] for f in json.loads(proc.stdout)["findings"]] == ["timestamp-mismatch"]


def test_a_chain_to_an_untrusted_ca_is_invalid_with_tsa_ca_and_unverified_otherwise(
    tsa, stamped, tmp_path
) -> None:
    ida, bundle = stamped
    other_ca = _other_ca(tsa, tmp_path, "Other CA")
    proc = ida.cli("verify", "--json", "--tsa-ca", other_ca, bundle)
    assert proc.returncode == 1
    assert [f["kind"] for f in json.loads(proc.stdout)["findings"]] == ["timestamp-invalid"]
    home = tmp_path / "home"
    shutil.copytree(ida.cli.home, home, symlinks=True)
    cli = Cli(home)
    cli("keys", "trust-tsa", other_ca, check=True)
    proc = cli("verify", "--json", bundle)
    assert proc.returncode == 0
    (note,) = [n for n in _notes(proc) if n.startswith("timestamp")]
    assert note.startswith("timestamp present, not verified (signature or TSA certificate chain")


def test_a_token_with_an_unsorted_certificate_set_is_not_verified_never_a_crash(
    tsa, stamped, tmp_path
) -> None:
    ida, bundle = stamped
    data = (bundle / "tagmanifest-sha256.txt").read_bytes()
    copy = _copy_with_tsr(bundle, tmp_path, openssl_stamp(tsa, data, tmp_path, with_ca_in_token=True))
    proc = ida.cli("verify", "--json", copy)
    assert proc.returncode == 0, proc.stdout
    (note,) = [n for n in _notes(proc) if n.startswith("timestamp")]
    assert note.startswith("timestamp present, not verified")


@pytest.mark.parametrize("kind", ["symlink", "directory", "huge"])
def test_a_tsr_that_is_not_a_small_regular_file_is_a_finding(stamped, tmp_path, kind) -> None:
    ida, bundle = stamped
    copy = _copy_with_tsr(bundle, tmp_path, None)
    tsr = copy / "tagmanifest-sha256.txt.tsr"
    saved = tsr.read_bytes()
    tsr.unlink()
    if kind == "symlink":
        (tmp_path / "outside.tsr").write_bytes(saved)
        tsr.symlink_to(tmp_path / "outside.tsr")
    elif kind == "directory":
        tsr.mkdir()
    else:
        with open(tsr, "wb") as fh:
            fh.truncate(20 << 30)  # sparse: never read
    proc = ida.cli("verify", "--json", copy, timeout=60)
    found = {(f["kind"], f["path"]) for f in json.loads(proc.stdout)["findings"]}
    expected = {
        "symlink": "not-regular-file",
        "directory": "timestamp-unreadable",
        "huge": "tag-file-too-large",
    }
    assert (expected[kind], "tagmanifest-sha256.txt.tsr") in found, found


def test_an_unreadable_tsa_ca_and_an_orphan_tsr_are_findings(stamped, tmp_path) -> None:
    ida, bundle = stamped
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_bytes(b"\xff not a certificate")
    proc = ida.cli("verify", "--json", "--tsa-ca", bad_ca, bundle)
    assert proc.returncode == 1
    assert [f["kind"] for f in json.loads(proc.stdout)["findings"]] == ["timestamp-ca-unreadable"]
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(bundle / "tagmanifest-sha256.txt.tsr", lonely)
    assert [f.kind for f in timestamp_findings(lonely)] == ["timestamp-orphan"]
