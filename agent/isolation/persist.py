"""`--persist` (a boot unit that re-applies isolation) and `--expire` (a timed restore).

The unit directory defaults to /etc/systemd/system and can be moved with `SEALBOX_SYSTEMD_DIR`;
when it is moved, sealbox only writes files there (no `systemctl`), which is what tests use.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import psutil

from agent.isolation._run import have, run
from agent.isolation.state import state_dir, write_private

UNIT_NAME = "sealbox-isolation.service"
WANTED_BY = "sysinit.target"
DEFAULT_SYSTEMD_DIR = Path("/etc/systemd/system")


def systemd_dir() -> Path:
    return Path(os.environ.get("SEALBOX_SYSTEMD_DIR") or DEFAULT_SYSTEMD_DIR)


def _manage_systemd() -> bool:
    return "SEALBOX_SYSTEMD_DIR" not in os.environ and have("systemctl")


def unit_text(exec_start: list[str]) -> str:
    return (
        "# Installed by `sealbox isolate --persist`; removed by `sealbox restore`.\n"
        "[Unit]\n"
        "Description=sealbox network isolation (re-applied at boot until sealbox restore)\n"
        "DefaultDependencies=no\n"
        "Before=network-pre.target\n"
        "Wants=network-pre.target\n"
        "After=local-fs.target\n"
        "Conflicts=shutdown.target\n"
        "Before=shutdown.target\n"
        "\n[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"ExecStart={shlex.join(exec_start)}\n"
        "\n[Install]\n"
        f"WantedBy={WANTED_BY}\n"
    )


def install(exec_start: list[str], files: dict[str, str]) -> dict[str, str]:
    """Write the rules files (into the state dir) and the unit, and enable it."""
    written: dict[str, str] = {}
    for name, text in files.items():
        path = state_dir() / name
        write_private(path, text.encode())
        written[name] = str(path)
    unit_dir = systemd_dir()
    unit = unit_dir / UNIT_NAME
    unit_dir.mkdir(parents=True, exist_ok=True)
    unit.write_text(unit_text(exec_start), encoding="utf-8")
    wants = unit_dir / f"{WANTED_BY}.wants"
    wants.mkdir(exist_ok=True)
    link = wants / UNIT_NAME
    if not link.is_symlink():
        link.symlink_to(unit)
    if _manage_systemd():
        run(["systemctl", "daemon-reload"], check=False)
    written["unit"] = str(unit)
    written["enabled_by"] = str(link)
    return written


def uninstall(files: list[str]) -> list[str]:
    """Remove the unit, its enablement link and the rules files; returns what was removed."""
    removed = []
    unit_dir = systemd_dir()
    for path in (unit_dir / f"{WANTED_BY}.wants" / UNIT_NAME, unit_dir / UNIT_NAME):
        if path.is_symlink() or path.exists():
            path.unlink()
            removed.append(str(path))
    for name in files:
        path = state_dir() / name
        if path.exists():
            path.unlink()
            removed.append(str(path))
    if removed and _manage_systemd():
        run(["systemctl", "daemon-reload"], check=False)
    return removed


def spawn_expiry(isolation_id: str, at_ns: int) -> int:
    """Start a detached helper (in this network namespace) that restores at `at_ns`."""
    argv = [
        sys.executable,
        "-m",
        "agent",
        "isolation",
        "expire-helper",
        "--id",
        isolation_id,
        "--at",
        str(at_ns),
    ]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    return proc.pid


def stop_expiry(pid: int | None, isolation_id: str) -> bool:
    """Stop the helper if it is still the one started for this isolation."""
    if not pid or pid == os.getpid():
        return False
    try:
        proc = psutil.Process(pid)
        if "expire-helper" not in proc.cmdline() or isolation_id not in proc.cmdline():
            return False
        proc.terminate()
        proc.wait(timeout=3)
    except (psutil.Error, subprocess.TimeoutExpired):
        return False
    return True
