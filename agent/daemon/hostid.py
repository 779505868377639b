"""This host's id: `<hostname>-<machine-id>`, the name orders and status documents use."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

from manifest.errors import UsageError

ENV = "SEALBOX_HOST_ID"
MACHINE_ID = Path("/etc/machine-id")
# One S3 key component and one file name: letters, digits, `.`, `_`, `-`.
HOST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_host_id(text: str, what: str = "host id") -> str:
    if not HOST_ID.fullmatch(text) or ".." in text:
        raise UsageError(f"{what} '{text[:80]}' is not a valid name", "use letters, digits, '.', '_', '-'")
    return text


def host_id(override: str | None = None) -> str:
    """`--host-id`, else $SEALBOX_HOST_ID, else hostname + `-` + /etc/machine-id. Cloned disks
    share a machine id, and the hostname tells such clones apart."""
    given = override or os.environ.get(ENV)
    if given:
        return check_host_id(given)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname().split(".")[0]) or "host"
    try:
        machine = MACHINE_ID.read_text().strip().lower()
    except OSError:
        machine = ""
    if not re.fullmatch(r"[0-9a-f]{32}", machine):
        raise UsageError(
            f"{MACHINE_ID} is missing or malformed: this host has no stable id",
            f"run `systemd-machine-id-setup`, or set {ENV}",
        )
    return check_host_id(f"{name}-{machine}")
