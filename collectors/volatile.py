"""Volatile state of the live host with psutil, most volatile first (RFC 3227 §2.1).

Every section is its own JSON document. A section that fails is recorded with its error; a
field that fails or is denied (a process owned by another user, a vanished pid) is recorded in
that record's `errors` — capture never aborts. No floats: times are integer nanoseconds plus
RFC 3339 strings, like everywhere in a bundle.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from manifest.format.timefmt import rfc3339_ns
from manifest.osio import readonly

if TYPE_CHECKING:
    from collections.abc import Iterator

_EXE_HASH_LIMIT = 512 * 1024 * 1024
_CMD_TIMEOUT = 5


def _system_path() -> str:
    """Where system commands are taken from: the system's own directories, never the caller's
    PATH, which an intruder (or a user's ~/bin) could have put a look-alike first on."""
    if sys.platform == "win32":
        return os.path.join(os.environ.get("SYSTEMROOT", r"C:\Windows"), "System32")  # noqa: PTH118
    return "/usr/sbin:/usr/bin:/sbin:/bin"


def _err(exc: BaseException) -> str:
    if isinstance(exc, psutil.AccessDenied):
        return "access denied"
    if isinstance(exc, psutil.NoSuchProcess):
        return "process vanished"
    if isinstance(exc, psutil.ZombieProcess):
        return "zombie process"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "not available"
    return f"{type(exc).__name__}: {exc}"


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1_000_000_000)


def _time_fields(prefix: str, seconds: float | None) -> dict[str, Any]:
    ns = _ns(seconds)
    return {f"{prefix}_ns": ns, prefix: rfc3339_ns(ns)}


def _int(value: Any) -> Any:
    """Floats are not allowed in a bundle: whole numbers become ints, others strings."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else repr(value)
    return value


class _Fields:
    """Collects one record's fields; a failing getter records its error instead of raising."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.errors: dict[str, str] = {}

    def get(self, name: str, getter: Callable[[], Any]) -> Any:
        try:
            value = getter()
        except Exception as exc:  # any failure of one field is data, not a crash
            self.data[name] = None
            self.errors[name] = _err(exc)
            return None
        self.data[name] = value
        return value

    def record(self) -> dict[str, Any]:
        return {**self.data, "errors": self.errors} if self.errors else dict(self.data)


def _run(argv: list[str]) -> dict[str, Any]:
    """Output of a read-only system command from the system's own directories, with the program
    that ran and its SHA-256 (so a trojaned tool can be told later), or why there is none."""
    exe = shutil.which(argv[0], path=_system_path())
    if exe is None:
        return {"command": argv, "error": f"{argv[0]} not installed in {_system_path()}"}
    digest: str | None = None
    why: str | None = None
    try:
        digest = _sha256_file(exe, {})
    except (OSError, ValueError) as exc:
        why = _err(exc)
    try:
        proc = subprocess.run(
            [exe, *argv[1:]], capture_output=True, timeout=_CMD_TIMEOUT, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"command": argv, "executable": exe, "error": _err(exc)}
    out: dict[str, Any] = {
        "command": argv,
        "executable": exe,
        "executable_sha256": digest,
        "exit_code": proc.returncode,
        "lines": proc.stdout.decode("utf-8", "replace").splitlines(),
    }
    if why:
        out["executable_sha256_error"] = why
    if proc.stderr:
        out["stderr"] = proc.stderr.decode("utf-8", "replace").strip()
    return out


def _read_text(path: str) -> str:
    return readonly.read_bytes(path, 4 * 1024 * 1024).decode("utf-8", "replace")


def _addr(addr: Any) -> dict[str, Any] | None:
    if not addr:
        return None
    if isinstance(addr, str):  # AF_UNIX
        return {"path": addr}
    return {"ip": addr.ip, "port": addr.port}


# -- sections -----------------------------------------------------------------------------
def system() -> dict[str, Any]:
    """Clocks first: everything else is read relative to them."""
    f = _Fields()
    f.get("utc_clock_ns", time.time_ns)
    f.data["utc_clock"] = rfc3339_ns(f.data["utc_clock_ns"])
    f.get("monotonic_ns", time.monotonic_ns)
    f.get("hostname", socket.gethostname)
    f.get("os", lambda: {"system": platform.system(), "release": platform.release()})
    f.get("kernel", lambda: " ".join(platform.uname()))
    f.get("machine", platform.machine)
    f.get("os_release", lambda: _read_text("/etc/os-release").splitlines())
    boot = f.get("boot_time_ns", lambda: _ns(psutil.boot_time()))
    f.data["boot_time"] = rfc3339_ns(boot)
    f.get("timezone", _timezone)
    f.get("time_sync", _time_sync)
    f.get("python", lambda: sys.version.split()[0])
    return f.record()


def _timezone() -> dict[str, Any]:
    tz: dict[str, Any] = {"tzname": list(time.tzname), "utc_offset_seconds": -time.timezone}
    tz["daylight"] = bool(time.daylight)
    if os.environ.get("TZ"):
        tz["TZ"] = os.environ["TZ"]
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        tz["localtime_link"] = str(localtime.readlink())
    tzfile = Path("/etc/timezone")
    if tzfile.is_file():
        tz["etc_timezone"] = _read_text(str(tzfile)).strip()
    return tz


def _time_sync() -> dict[str, Any]:
    if sys.platform.startswith("linux"):
        out: dict[str, Any] = {"timedatectl": _run(["timedatectl", "show"])}
        out["systemd_timesync_synchronized"] = Path("/run/systemd/timesync/synchronized").exists()
        if shutil.which("chronyc"):
            out["chronyc_tracking"] = _run(["chronyc", "-n", "tracking"])
        return out
    if sys.platform == "darwin":
        return {"sntp": _run(["systemsetup", "-getusingnetworktime"])}
    return {"w32tm": _run(["w32tm", "/query", "/status"])}


def connections() -> dict[str, Any]:
    """Every inet/unix socket with its owning pid (needs root to see other users' pids)."""
    rows = []
    for c in psutil.net_connections(kind="all"):
        rows.append(
            {
                "fd": c.fd,
                "family": getattr(c.family, "name", str(c.family)),
                "type": getattr(c.type, "name", str(c.type)),
                "laddr": _addr(c.laddr),
                "raddr": _addr(c.raddr),
                "status": c.status,
                "pid": c.pid,
            }
        )
    return {"count": len(rows), "connections": rows}


def listening() -> dict[str, Any]:
    """Sockets waiting for connections: TCP LISTEN and unconnected UDP, with the owning process."""
    rows = []
    names: dict[int, str | None] = {}
    for c in psutil.net_connections(kind="inet"):
        is_tcp = c.type == socket.SOCK_STREAM
        if (is_tcp and c.status != psutil.CONN_LISTEN) or (not is_tcp and c.raddr):
            continue
        name = None
        if c.pid is not None:
            if c.pid not in names:
                try:
                    names[c.pid] = psutil.Process(c.pid).name()
                except psutil.Error:
                    names[c.pid] = None
            name = names[c.pid]
        rows.append(
            {
                "protocol": ("tcp" if is_tcp else "udp") + ("6" if c.family == socket.AF_INET6 else ""),
                "ip": c.laddr.ip,
                "port": c.laddr.port,
                "pid": c.pid,
                "process": name,
                "fd": c.fd,
            }
        )
    rows.sort(key=lambda r: (r["protocol"], r["port"], r["ip"]))
    return {"count": len(rows), "listening": rows}


def _hex_ipv4(text: str) -> str:
    raw = bytes.fromhex(text)
    return socket.inet_ntop(socket.AF_INET, raw[::-1])


def routes() -> dict[str, Any]:
    if not sys.platform.startswith("linux"):
        return {"netstat": _run(["netstat", "-rn"])}
    out: dict[str, Any] = {}
    rows = []
    lines = _read_text("/proc/net/route").splitlines()
    for line in lines[1:]:
        f = line.split()
        if len(f) >= 8:
            rows.append(
                {
                    "interface": f[0],
                    "destination": _hex_ipv4(f[1]),
                    "gateway": _hex_ipv4(f[2]),
                    "flags": int(f[3], 16),
                    "metric": int(f[6]),
                    "mask": _hex_ipv4(f[7]),
                }
            )
    out["ipv4"] = rows
    v6 = []
    try:
        for line in _read_text("/proc/net/ipv6_route").splitlines():
            f = line.split()
            if len(f) >= 10:
                dest = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(f[0]))
                gw = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(f[4]))
                v6.append(
                    {
                        "destination": f"{dest}/{int(f[1], 16)}",
                        "gateway": gw,
                        "metric": int(f[5], 16),
                        "interface": f[9],
                    }
                )
        out["ipv6"] = v6
    except OSError as exc:
        out["ipv6_error"] = _err(exc)
    return out


def neighbors() -> dict[str, Any]:
    """ARP (IPv4) from /proc; IPv6 neighbours only through `ip neigh` where installed."""
    if not sys.platform.startswith("linux"):
        return {"arp": _run(["arp", "-an"])}
    rows = []
    lines = _read_text("/proc/net/arp").splitlines()
    for line in lines[1:]:
        f = line.split()
        if len(f) >= 6:
            rows.append(
                {"ip": f[0], "hw_type": f[1], "flags": f[2], "mac": f[3], "mask": f[4], "interface": f[5]}
            )
    return {"arp": rows, "ip_neigh": _run(["ip", "neigh", "show"])}


def _sha256_file(path: str, cache: dict[tuple[int, int, int, int], str | None]) -> str | None:
    with readonly.opened(path) as fd:
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key in cache:
            return cache[key]
        if st.st_size > _EXE_HASH_LIMIT:
            cache[key] = None
            raise ValueError(f"executable larger than {_EXE_HASH_LIMIT} bytes, not hashed")
        h = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
        cache[key] = h.hexdigest()
        return cache[key]


def _create_time_ns(proc: psutil.Process) -> int | None:
    return _ns(proc.create_time())


def _open_handles(proc: psutil.Process) -> int:
    """Open file descriptors (POSIX) or handles (Windows)."""
    return proc.num_fds() if hasattr(proc, "num_fds") else proc.num_handles()


def processes() -> dict[str, Any]:
    """The process table; the executable is hashed through /proc/<pid>/exe on Linux so a deleted
    or replaced binary is still the one that runs."""
    rows = []
    cache: dict[tuple[int, int, int, int], str | None] = {}
    for proc in psutil.process_iter():
        f = _Fields()
        f.data["pid"] = proc.pid
        f.get("ppid", proc.ppid)
        f.get("name", proc.name)
        exe = f.get("exe", proc.exe)
        exe_path = f"/proc/{proc.pid}/exe" if sys.platform.startswith("linux") else exe
        if exe:  # kernel threads have no executable: nothing to hash, nothing failed
            f.get("exe_sha256", functools.partial(_sha256_file, exe_path, cache))
        else:
            f.data["exe_sha256"] = None
        f.get("cmdline", proc.cmdline)
        f.get("username", proc.username)
        created = f.get("create_time_ns", functools.partial(_create_time_ns, proc))
        f.data["create_time"] = rfc3339_ns(created)
        f.get("status", proc.status)
        f.get("cwd", proc.cwd)
        f.get("open_files", functools.partial(_open_handles, proc))
        rows.append(f.record())
    return {"count": len(rows), "processes": rows}


def users() -> dict[str, Any]:
    rows = [
        {
            "name": u.name,
            "terminal": u.terminal,
            "host": u.host,
            **_time_fields("started", u.started),
            "pid": getattr(u, "pid", None),
        }
        for u in psutil.users()
    ]
    return {"count": len(rows), "users": rows}


def interfaces() -> dict[str, Any]:
    stats = psutil.net_if_stats()
    out = {}
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        st = stats.get(name)
        out[name] = {
            "up": st.isup if st else None,
            "mtu": st.mtu if st else None,
            "speed_mbps": st.speed if st else None,
            "duplex": getattr(st.duplex, "name", None) if st else None,
            "flags": getattr(st, "flags", None) if st else None,
            "addresses": [
                {
                    "family": getattr(a.family, "name", str(a.family)),
                    "address": a.address,
                    "netmask": a.netmask,
                    "broadcast": a.broadcast,
                    "ptp": a.ptp,
                }
                for a in addrs
            ],
        }
    return {"interfaces": out}


def dns() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in ("/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"):
        try:
            text = _read_text(path)
        except OSError as exc:
            out[path] = {"error": _err(exc)}
            continue
        servers, search, options = [], [], []
        for line in text.splitlines():
            f = line.split()
            if not f or f[0].startswith(("#", ";")):
                continue
            if f[0] == "nameserver" and len(f) > 1:
                servers.append(f[1])
            elif f[0] in ("search", "domain"):
                search.extend(f[1:])
            elif f[0] == "options":
                options.extend(f[1:])
        out[path] = {"nameservers": servers, "search": search, "options": options}
    if sys.platform == "darwin":
        out["scutil"] = _run(["scutil", "--dns"])
    elif sys.platform == "win32":
        out["ipconfig"] = _run(["ipconfig", "/all"])
    return out


def mounts() -> dict[str, Any]:
    rows = [
        {"device": p.device, "mountpoint": p.mountpoint, "fstype": p.fstype, "options": p.opts}
        for p in psutil.disk_partitions(all=True)
    ]
    return {"count": len(rows), "mounts": rows}


def modules() -> dict[str, Any]:
    if sys.platform == "darwin":
        return {"kextstat": _run(["kextstat", "-l"])}
    if not sys.platform.startswith("linux"):
        return {"driverquery": _run(["driverquery", "/v", "/fo", "csv"])}
    rows = []
    for line in _read_text("/proc/modules").splitlines():
        f = line.split()
        if len(f) >= 6:
            rows.append(
                {
                    "name": f[0],
                    "size": int(f[1]),
                    "refcount": int(f[2]) if f[2].isdigit() else f[2],
                    "used_by": [d for d in f[3].split(",") if d and d != "-"],
                    "state": f[4],
                    "taint": f[6].strip("()") if len(f) > 6 else "",
                }
            )
    return {"count": len(rows), "modules": rows}


Section = Callable[[], dict[str, Any]]  # a section: its data as a JSON-ready dict, or it raises


class Sections(dict[str, Section]):
    """The volatile sections by name, in the order they are taken: most volatile first. Each is
    registered once, here; artifact definitions may name only these (`names()`)."""

    def __init__(self, sections: list[tuple[str, Section]]) -> None:
        super().__init__()
        for name, capture in sections:
            if name in self:
                raise ValueError(f"volatile section {name!r} registered twice")
            self[name] = capture

    def names(self) -> tuple[str, ...]:
        return tuple(self)


# To add a section: write its function (here or in a module of its own, see
# collectors/kinds/example.py) and add one line below, at its place in the order of volatility.
SECTIONS = Sections(
    [
        ("system", system),
        ("connections", connections),
        ("listening", listening),
        ("routes", routes),
        ("neighbors", neighbors),
        ("processes", processes),
        ("users", users),
        ("interfaces", interfaces),
        ("dns", dns),
        ("mounts", mounts),
        ("modules", modules),
    ]
)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return _int(value)


def capture_section(name: str) -> dict[str, Any]:
    """One section as a JSON-ready document: `ok`, when it was taken, its data or its error."""
    start = time.time_ns()
    doc: dict[str, Any] = {"section": name, "captured_at": rfc3339_ns(start)}
    try:
        data = SECTIONS[name]()
    except Exception as exc:  # a failing section is recorded, never fatal
        doc.update(ok=False, error=_err(exc))
        return doc
    doc.update(ok=True, data=_clean(data))
    doc["duration_ns"] = time.time_ns() - start
    return doc


def capture(sections: tuple[str, ...] | list[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each requested section (all by default) in order of volatility, yielded as soon as it is
    taken."""
    for name in SECTIONS.names():
        if sections is None or name in sections:
            yield name, capture_section(name)
