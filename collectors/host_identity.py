"""Who the evidence device is (SPEC §4.2 `device`): host name, machine id, vendor, model, serial,
asset tag, MAC and IP addresses, read at collection into the `collection-started` event.

For the live system they come from the kernel (/sys, interfaces); for a collection from an image
(`--root`) only from the image itself (/etc/hostname, /etc/machine-id, the Windows SYSTEM hive),
never from the examiner's own machine. Every file is read without following a final symlink (an
image's link could point into the examiner's system) and without moving its atime.
"""

from __future__ import annotations

import os
import platform
import socket
import tempfile
from pathlib import Path
from typing import Any

from manifest.osio.readonly import list_dir, read_bytes

_DMI = Path("/sys/class/dmi/id")
_DMI_FIELDS = {
    "vendor": "sys_vendor",
    "model": "product_name",
    "serial": "product_serial",
    "asset_tag": "chassis_asset_tag",
}
# What firmware writes when nobody filled the field in: not an identifier.
_PLACEHOLDERS = frozenset(
    {
        "",
        "to be filled by o.e.m.",
        "default string",
        "not specified",
        "none",
        "system serial number",
        "0",
        "no asset tag",
        "asset-1234567890",
        "chassis serial number",
    }
)
SYSTEM_HIVE = ("Windows", "System32", "config", "SYSTEM")
OVERRIDABLE = ("hostname", "serial", "model", "vendor", "asset_tag")


def _read_text(path: Path, limit: int = 4096) -> str | None:
    try:
        data = read_bytes(os.fsencode(path), limit, follow=False)
    except OSError:
        return None
    text = data.decode("utf-8", "replace").strip().strip("\x00").strip()
    return text or None


def _identifier(text: str | None) -> str | None:
    return None if text is None or text.strip().lower() in _PLACEHOLDERS else text.strip()


def _first_line(text: str | None) -> str | None:
    if text is None:
        return None
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            return line
    return None


def _os_release(root: Path) -> tuple[str | None, str | None]:
    for rel in ("etc/os-release", "usr/lib/os-release"):
        text = _read_text(root / rel, 65536)
        if text is None:
            continue
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "PRETTY_NAME":
                return value.strip().strip("\"'") or None, "/" + rel
    return None, None


def _live_addresses() -> tuple[list[str], list[str]]:
    import psutil

    macs: set[str] = set()
    ips: set[str] = set()
    for name, addrs in psutil.net_if_addrs().items():
        if name == "lo":
            continue
        for addr in addrs:
            if addr.family == psutil.AF_LINK and addr.address and addr.address != "00:00:00:00:00:00":
                macs.add(addr.address.lower())
            elif addr.family in (socket.AF_INET, socket.AF_INET6) and addr.address:
                ip = addr.address.split("%", 1)[0]
                if ip not in ("127.0.0.1", "::1"):
                    ips.add(ip)
    return sorted(macs), sorted(ips)


def _find_ci(root: Path, parts: tuple[str, ...]) -> Path | None:
    """`root/parts...` matched case-insensitively (an NTFS image mounted on Linux keeps case)."""
    here = root
    for part in parts:
        try:
            entries = list_dir(os.fsencode(here))
        except OSError:
            return None
        match = next(
            (n for n, _is_dir, is_link in entries if not is_link and os.fsdecode(n).lower() == part.lower()),
            None,
        )
        if match is None:
            return None
        here = here / os.fsdecode(match)
    return here


def windows_computer_name(hive: Path) -> str | None:
    """ComputerName from a SYSTEM hive (its current control set), read with regipy from a private
    copy of its bytes (so the image's file is opened once, read-only, without an atime update).
    None when regipy is not installed or the hive does not hold the name."""
    try:
        from regipy.registry import RegistryHive
    except ImportError:
        return None
    try:
        data = read_bytes(os.fsencode(hive), 512 << 20, follow=False)
    except OSError:
        return None
    with tempfile.NamedTemporaryFile(prefix="sealbox-hive-") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            reg = RegistryHive(tmp.name)
            current = 1
            try:
                select = reg.get_key("\\Select")
                current = int(next(v.value for v in select.iter_values() if v.name == "Current"))
            except Exception:
                current = 1
            key = reg.get_key(f"\\ControlSet{current:03d}\\Control\\ComputerName\\ComputerName")
            for value in key.iter_values():
                if value.name == "ComputerName" and isinstance(value.value, str) and value.value.strip():
                    return value.value.strip().strip("\x00")
        except Exception:
            return None
    return None


def identify(root: Path | None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `device` object of `collection-started`: the live host's identifiers, or (with `root`)
    the image's; `overrides` (hostname, serial, model, vendor, asset_tag, from flags) win."""
    device: dict[str, Any] = {
        "source": "live" if root is None else "image",
        "hostname": None,
        "machine_id": None,
        "vendor": None,
        "model": None,
        "serial": None,
        "asset_tag": None,
        "macs": [],
        "ips": [],
        "os": None,
        "read_from": {},
    }
    read_from: dict[str, str] = device["read_from"]
    base = root if root is not None else Path("/")
    if root is None:
        device["hostname"] = socket.gethostname() or None
        read_from["hostname"] = "gethostname()"
        for name, file in _DMI_FIELDS.items():
            value = _identifier(_read_text(_DMI / file))
            if value is not None:
                device[name] = value
                read_from[name] = str(_DMI / file)
        try:
            device["macs"], device["ips"] = _live_addresses()
            read_from["macs"] = read_from["ips"] = "network interfaces"
        except (ImportError, OSError):
            pass
    else:
        found = _first_line(_read_text(base / "etc/hostname"))
        if found is not None:
            device["hostname"], read_from["hostname"] = found, "/etc/hostname"
        else:
            hive = _find_ci(base, SYSTEM_HIVE)
            computer = windows_computer_name(hive) if hive is not None else None
            if computer is not None:
                device["hostname"] = computer
                read_from["hostname"] = "/" + "/".join(SYSTEM_HIVE) + ":ComputerName"
    machine_id = _identifier(_first_line(_read_text(base / "etc/machine-id")))
    if machine_id is not None:
        device["machine_id"], read_from["machine_id"] = machine_id, "/etc/machine-id"
    os_name, where = _os_release(base)
    if os_name is not None and where is not None:
        device["os"], read_from["os"] = os_name, where
    elif root is None:
        device["os"], read_from["os"] = f"{platform.system()} {platform.release()}", "uname"
    for key, value in (overrides or {}).items():
        if key in OVERRIDABLE and value:
            device[key] = str(value)
            read_from[key] = "flag"
    return device


def image_host(root: Path) -> str | None:
    """The host name an image holds (what its bundle is named after), or None."""
    name = identify(root).get("hostname")
    return name if isinstance(name, str) and name else None


def started_details(root: Path | None, given: dict[str, Any]) -> dict[str, Any]:
    """The court fields of `collection-started`: `given` (exhibit, authority, `device` overrides
    or a complete `device`) with the device identifiers read from the target."""
    out = {k: v for k, v in given.items() if v not in (None, {}, "")}
    device = out.get("device")
    if not isinstance(device, dict) or "source" not in device:
        out["device"] = identify(root, device if isinstance(device, dict) else None)
    return out
