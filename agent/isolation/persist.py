"""`--persist` (a boot unit that re-applies isolation) and `--expire` (a timed restore).

The unit runs `sealbox isolation boot`, which honours the record: an `--expire` time that has
passed restores (and logs it) instead of isolating again, a `--check` that was killed is rolled
back, otherwise the recorded ruleset is loaded and the expiry helper started again. If sealbox
itself cannot run at boot, the unit loads the persisted rules file directly: it fails closed.

The unit directory defaults to /etc/systemd/system and can be moved with `SEALBOX_SYSTEMD_DIR`;
when it is moved, sealbox only writes files there (no `systemctl`), which is what tests use.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.isolation._run import have, run
from agent.isolation.state import state_dir, write_private

if TYPE_CHECKING:
    import psutil

UNIT_NAME = "sealbox-isolation.service"
WANTED_BY = "sysinit.target"
DEFAULT_SYSTEMD_DIR = Path("/etc/systemd/system")


def systemd_dir() -> Path:
    return Path(os.environ.get("SEALBOX_SYSTEMD_DIR") or DEFAULT_SYSTEMD_DIR)


def _manage_systemd() -> bool:
    return "SEALBOX_SYSTEMD_DIR" not in os.environ and have("systemctl")


# Passed on to the boot command, so that it finds the same state, units and key store.
BOOT_ENV = ("SEALBOX_STATE_DIR", "SEALBOX_SYSTEMD_DIR", "SEALBOX_HOME", "SEALBOX_PASSPHRASE_FILE")


def boot_command(fallback: list[str]) -> tuple[list[str], dict[str, str]]:
    """The unit's command (`sealbox isolation boot`, else `fallback`) and its environment."""
    import agent

    env = {k: os.environ[k] for k in BOOT_ENV if os.environ.get(k)}
    env["PYTHONPATH"] = str(Path(agent.__file__).resolve().parent.parent)
    script = f"{shlex.quote(sys.executable)} -m agent isolation boot || {shlex.join(fallback)}"
    return ["/bin/sh", "-c", script], env


def unit_text(exec_start: list[str], environment: dict[str, str] | None = None) -> str:
    env_lines = "".join(f'Environment="{k}={v}"\n' for k, v in (environment or {}).items())
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
        f"{env_lines}"
        f"ExecStart={shlex.join(exec_start)}\n"
        "\n[Install]\n"
        f"WantedBy={WANTED_BY}\n"
    )


def install(
    exec_start: list[str], files: dict[str, str], environment: dict[str, str] | None = None
) -> dict[str, Any]:
    """Write the rules files (into the state dir) and the unit, and enable it."""
    written: dict[str, Any] = {}
    for name, text in files.items():
        path = state_dir() / name
        write_private(path, text.encode())
        written[name] = str(path)
    unit_dir = systemd_dir()
    unit = unit_dir / UNIT_NAME
    unit_dir.mkdir(parents=True, exist_ok=True)
    write_private(unit, unit_text(exec_start, environment).encode())
    unit.chmod(0o644)
    wants = unit_dir / f"{WANTED_BY}.wants"
    wants.mkdir(exist_ok=True)
    link = wants / UNIT_NAME
    if not link.is_symlink():
        link.symlink_to(unit)
    if _manage_systemd():
        run(["systemctl", "daemon-reload"], check=False)
    written["unit"] = str(unit)
    written["enabled_by"] = str(link)
    written["files"] = list(files)
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


def _helper(pid: int | None, isolation_id: str) -> psutil.Process | None:
    """The running expiry helper of this isolation (a reused pid is not it)."""
    if not pid or pid == os.getpid():
        return None
    import psutil  # here, not at start-up: only a record with an expiry needs it

    try:
        proc = psutil.Process(pid)
        cmdline = proc.cmdline()
    except psutil.Error:
        return None
    if "expire-helper" not in cmdline or isolation_id not in cmdline:
        return None
    return proc


def expiry_alive(pid: int | None, isolation_id: str) -> bool:
    return _helper(pid, isolation_id) is not None


def stop_expiry(pid: int | None, isolation_id: str) -> bool:
    """Stop the helper if it is still the one started for this isolation."""
    proc = _helper(pid, isolation_id)
    if proc is None:
        return False
    import psutil

    try:
        proc.terminate()
        proc.wait(timeout=3)
    except (psutil.Error, subprocess.TimeoutExpired):
        return False
    return True
