"""A private mount namespace in which the sources' mounts are `noatime`.

O_NOATIME keeps file and directory reads from moving atimes, but Linux has no such flag for
readlink(2): reading a symlink's target updates the link's own atime. Only a mount flag stops
that. As root, sealbox moves itself into a mount namespace of its own (`unshare`), makes that
copy of the mount tree private, and remounts there, with MS_NOATIME added and every other
per-mount flag kept, each mount that holds a source. The machine's own mounts are never changed:
only this process and its workers see the copy, and it is gone when they exit.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from manifest.osio.libc import libc as c_library

_CLONE_NEWNS = 0x00020000
_MS_RDONLY = 0x1
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MS_NOEXEC = 0x8
_MS_REMOUNT = 0x20
_MS_NOATIME = 0x400
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000
_KEPT = {"ro": _MS_RDONLY, "nosuid": _MS_NOSUID, "nodev": _MS_NODEV, "noexec": _MS_NOEXEC}


# Filesystems whose "files" are the kernel's live state, not stored data: some never end
# (/proc/kcore), and reading some changes what they hold (a trace pipe consumes its events).
# Volatile state is captured by its own collector; a walk never descends into these.
PSEUDO_FILESYSTEMS = frozenset(
    {
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "efivarfs",
        "fusectl", "hugetlbfs", "mqueue", "nfsd", "nsfs", "proc", "pstore", "rpc_pipefs",
        "securityfs", "selinuxfs", "sysfs", "tracefs",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Mount:
    point: bytes
    options: frozenset[str]
    fstype: str = ""


def _unescape(field: bytes) -> bytes:
    """mountinfo writes space, tab, newline and backslash as octal escapes (`\\040`)."""
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i : i + 1] == b"\\" and field[i + 1 : i + 4].isdigit():
            out.append(int(field[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return bytes(out)


def mounts(mountinfo: bytes) -> list[Mount]:
    """Mount points, per-mount options and filesystem types of /proc/self/mountinfo (fields 5
    and 6, and the first field after the ` - ` that ends the optional ones)."""
    out = []
    for line in mountinfo.splitlines():
        fields = line.split(b" ")
        if len(fields) > 5:
            optional_end = fields.index(b"-", 6) if b"-" in fields[6:-1] else -2
            fstype = fields[optional_end + 1].decode(errors="replace") if optional_end > 0 else ""
            out.append(Mount(_unescape(fields[4]), frozenset(fields[5].decode().split(",")), fstype))
    return out


def pseudo_devices(mountinfo: Path = Path("/proc/self/mountinfo")) -> frozenset[int]:
    """The device numbers (st_dev) of the pseudo filesystems mounted here; empty where there is
    no mount table to read."""
    try:
        table = mounts(mountinfo.read_bytes())
    except OSError:
        return frozenset()
    devices = set()
    for mount in table:
        if mount.fstype in PSEUDO_FILESYSTEMS:
            try:
                devices.add(os.stat(mount.point).st_dev)  # noqa: PTH116 - bytes path
            except OSError:
                continue
    return frozenset(devices)


def mounts_for(paths: list[bytes], table: list[Mount]) -> list[Mount]:
    """Every mount a walk of `paths` can read: the one holding each path and those below it."""
    chosen: dict[bytes, Mount] = {}
    for path in paths:
        path = os.path.normpath(path)
        holder = max(
            (m for m in table if path == m.point or path.startswith(m.point.rstrip(b"/") + b"/")),
            key=lambda m: len(m.point),
            default=None,
        )
        if holder is not None:
            chosen[holder.point] = holder
        prefix = path.rstrip(b"/") + b"/"
        for m in table:
            if m.point.startswith(prefix):
                chosen[m.point] = m
    return [chosen[point] for point in sorted(chosen)]


def enter_noatime_namespace(paths: list[bytes]) -> tuple[list[str], str | None]:
    """(mount points now noatime for this process, or why not). Best effort: without root or
    on another system the run goes on, and the acquisition log says why."""
    if not sys.platform.startswith("linux"):
        return [], "not Linux"
    if os.geteuid() != 0:
        return [], "needs root (CAP_SYS_ADMIN) for a private mount namespace"
    libc = c_library()
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    if libc.unshare(_CLONE_NEWNS) != 0:
        return [], f"unshare: {os.strerror(ctypes.get_errno())}"
    # Only past this point is it our own copy of the mount tree; make sure nothing done to it
    # propagates back to the machine's mounts.
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return [], f"making the namespace private: {os.strerror(ctypes.get_errno())}"
    with open("/proc/self/mountinfo", "rb") as fh:
        table = mounts(fh.read())
    done: list[str] = []
    problems: list[str] = []
    for mount in mounts_for(paths, table):
        if "noatime" in mount.options:
            done.append(os.fsdecode(mount.point))
            continue
        flags = _MS_REMOUNT | _MS_BIND | _MS_NOATIME
        for name, bit in _KEPT.items():
            if name in mount.options:
                flags |= bit
        if libc.mount(None, mount.point, None, flags, None) != 0:
            problems.append(f"{os.fsdecode(mount.point)}: {os.strerror(ctypes.get_errno())}")
        else:
            done.append(os.fsdecode(mount.point))
    return done, "; ".join(problems) or None
