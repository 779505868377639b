"""Volatile capture of this live host: our own process, a socket we opened, failures recorded."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from collectors import volatile
from tests.support.env import require_tool


def _no_floats(value: Any, where: str = "") -> None:
    assert not isinstance(value, float), f"float at {where}"
    if isinstance(value, dict):
        for k, v in value.items():
            _no_floats(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_floats(v, f"{where}[{i}]")


@pytest.fixture(scope="module")
def listener() -> Any:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # loopback only: nothing outside this machine can reach it
    sock.listen(1)
    yield sock
    sock.close()


@pytest.fixture(scope="module")
def snapshot(listener: socket.socket) -> dict[str, dict[str, Any]]:
    return dict(volatile.capture())


def test_sections_are_taken_in_order_of_volatility(snapshot: dict[str, dict[str, Any]]) -> None:
    assert list(snapshot) == list(volatile.SECTIONS.names())
    assert list(volatile.SECTIONS.names()[:3]) == ["system", "connections", "listening"]


@pytest.mark.parametrize("name", volatile.SECTIONS.names())
def test_every_registered_section_is_captured_as_plain_json(
    name: str, snapshot: dict[str, dict[str, Any]]
) -> None:
    capture = volatile.SECTIONS[name]
    assert capture.__doc__ is None or capture.__doc__.strip(), name
    doc = snapshot[name]
    assert doc["section"] == name and doc["captured_at"].endswith("Z")
    assert doc["ok"] is True or doc["error"], name
    if doc["ok"]:
        assert isinstance(doc["data"], dict) and doc["duration_ns"] >= 0
    json.dumps(doc, allow_nan=False)  # every section is plain JSON
    _no_floats(doc, name)


def test_a_section_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        volatile.Sections([("system", volatile.system), ("system", volatile.users)])


def test_system_section_has_both_clocks_and_boot_time(snapshot: dict[str, dict[str, Any]]) -> None:
    data = snapshot["system"]["data"]
    assert abs(data["utc_clock_ns"] - time.time_ns()) < 600 * 10**9
    assert data["utc_clock"].endswith("Z") and isinstance(data["monotonic_ns"], int)
    assert data["hostname"] == socket.gethostname()
    assert 0 < data["boot_time_ns"] < data["utc_clock_ns"]
    assert "tzname" in data["timezone"] and "time_sync" in data


def test_processes_include_this_test_with_hash_of_its_executable(snapshot: dict[str, dict[str, Any]]) -> None:
    procs = {p["pid"]: p for p in snapshot["processes"]["data"]["processes"]}
    me = procs[os.getpid()]
    assert me["ppid"] == os.getppid()
    assert "python" in me["cmdline"][0] or me["cmdline"][0].endswith(Path(sys.executable).name)
    with open(os.path.realpath(sys.executable), "rb") as fh:
        assert me["exe_sha256"] == hashlib.sha256(fh.read()).hexdigest()
    assert me["cwd"] == str(Path.cwd())
    assert me["open_files"] >= 3 and me["create_time"].endswith("Z")
    assert me["status"] in ("running", "sleeping")


def test_listening_socket_opened_by_the_test_is_listed_with_its_pid(
    snapshot: dict[str, dict[str, Any]], listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    rows = [r for r in snapshot["listening"]["data"]["listening"] if r["port"] == port]
    assert rows == [
        {
            "protocol": "tcp",
            "ip": "127.0.0.1",
            "port": port,
            "pid": os.getpid(),
            "process": rows[0]["process"],
            "fd": listener.fileno(),
        }
    ]
    conns = snapshot["connections"]["data"]["connections"]
    assert any(
        c["laddr"] == {"ip": "127.0.0.1", "port": port}
        and c["status"] == "LISTEN"
        and c["pid"] == os.getpid()
        for c in conns
    )


def test_network_tables_and_host_state(snapshot: dict[str, dict[str, Any]]) -> None:
    assert "lo" in snapshot["interfaces"]["data"]["interfaces"]
    lo = snapshot["interfaces"]["data"]["interfaces"]["lo"]
    assert any(a["address"] == "127.0.0.1" for a in lo["addresses"])
    routes = snapshot["routes"]["data"]
    assert "ipv4" in routes
    assert "arp" in snapshot["neighbors"]["data"]
    assert "/etc/resolv.conf" in snapshot["dns"]["data"]
    assert any(m["mountpoint"] == "/" for m in snapshot["mounts"]["data"]["mounts"])
    assert snapshot["users"]["ok"] is True
    modules = snapshot["modules"]
    # Some kernels (containers, no module support) have no /proc/modules: recorded, not fatal.
    assert modules["ok"] or modules["error"] == "not available"


def test_a_failing_section_is_recorded_and_capture_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict[str, Any]:
        raise PermissionError(13, "Permission denied", "/proc/net/route")

    monkeypatch.setitem(volatile.SECTIONS, "routes", broken)
    docs = dict(volatile.capture(["system", "routes", "users"]))
    assert list(docs) == ["system", "routes", "users"]
    assert docs["routes"] == {
        "section": "routes",
        "captured_at": docs["routes"]["captured_at"],
        "ok": False,
        "error": "permission denied",
    }
    assert docs["users"]["ok"] is True


def test_a_denied_field_is_recorded_in_the_record() -> None:
    import psutil

    fields = volatile._Fields()
    fields.get("pid", lambda: 1)
    fields.get("exe", lambda: (_ for _ in ()).throw(psutil.AccessDenied(1)))
    fields.get("cwd", lambda: (_ for _ in ()).throw(psutil.NoSuchProcess(1)))
    assert fields.record() == {
        "pid": 1,
        "exe": None,
        "cwd": None,
        "errors": {"exe": "access denied", "cwd": "process vanished"},
    }


def test_exe_hash_does_not_change_the_executable_atime(tmp_path) -> None:
    exe = tmp_path / "tool"
    exe.write_bytes(b"#!/bin/sh\nexit 0\n")
    os.utime(exe, ns=(10**18, 2 * 10**18))  # atime older than mtime: a plain read would bump it
    before = exe.stat()
    digest = volatile._sha256_file(str(exe), {})
    after = exe.stat()
    assert digest == hashlib.sha256(b"#!/bin/sh\nexit 0\n").hexdigest()
    assert (after.st_atime_ns, after.st_ctime_ns) == (before.st_atime_ns, before.st_ctime_ns)


def test_system_commands_come_from_the_system_not_from_path(tmp_path, monkeypatch) -> None:
    require_tool("ip")
    fake = tmp_path / "ip"
    fake.write_text("#!/bin/sh\necho planted\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")  # a look-alike first on PATH
    out = volatile._run(["ip", "neigh", "show"])
    assert out["executable"] in ("/usr/sbin/ip", "/usr/bin/ip", "/sbin/ip", "/bin/ip")
    assert out["executable_sha256"] == hashlib.sha256(Path(out["executable"]).read_bytes()).hexdigest()
    assert "planted" not in out["lines"]
    missing = volatile._run(["no-such-tool-anywhere"])
    assert "not installed in /usr/sbin:/usr/bin:/sbin:/bin" in missing["error"]
