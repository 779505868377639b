"""A test timestamp authority: a CA and a TSA certificate made by `openssl`, and replies made by
`openssl ts -reply` (real RFC 3161 tokens, signed)."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

TSA_CNF = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = {d}/serial
signer_cert = {d}/tsa.pem
# No `certs =`: with the CA too, openssl writes the certificate SET OF unsorted (not DER).
signer_key = {d}/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ess_cert_id_alg = sha256
[ v3_tsa ]
basicConstraints = CA:FALSE
extendedKeyUsage = critical,timeStamping
"""


def make_tsa(d: Path, openssl: str) -> dict:
    """A CA and a TSA certificate under `d`; what `openssl_stamp` needs."""
    (d / "tsa.cnf").write_text(TSA_CNF.format(d=d))
    (d / "serial").write_text("01\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=d)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Test TSA CA")
    run("req", *ec, "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=Test TSA")
    run(
        "x509",
        "-req",
        "-in",
        "tsa.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "tsa.pem",
        "-days",
        "2",
        "-extfile",
        "tsa.cnf",
        "-extensions",
        "v3_tsa",
    )

    return {"ca": d / "ca.pem", "openssl": openssl, "dir": d}


def openssl_stamp(tsa: dict, data: bytes, tmp_path: Path, *, with_ca_in_token: bool = False) -> bytes:
    """A reply made by `openssl ts -reply` directly (optionally with the CA certificate embedded,
    which openssl writes as an unsorted SET OF)."""
    d = tsa["dir"]
    (tmp_path / "data").write_bytes(data)
    cnf = tmp_path / "tsa.cnf"
    text = (d / "tsa.cnf").read_text()
    if with_ca_in_token:
        text = text.replace("signer_key =", f"certs = {d}/ca.pem\nsigner_key =")
    cnf.write_text(text)
    run = [tsa["openssl"], "ts"]
    subprocess.run(
        [*run, "-query", "-data", tmp_path / "data", "-sha256", "-cert", "-out", tmp_path / "q.tsq"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*run, "-reply", "-config", cnf, "-queryfile", tmp_path / "q.tsq", "-out", tmp_path / "r.tsr"],
        check=True,
        capture_output=True,
    )
    return (tmp_path / "r.tsr").read_bytes()
