"""Running the firewall tools: the one place where a failed command becomes an IsolationError."""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

from manifest.errors import IsolationError

if TYPE_CHECKING:
    from collections.abc import Sequence

TOOL_TIMEOUT = 30.0


def have(tool: str) -> bool:
    """True when `tool` is on PATH."""
    return shutil.which(tool) is not None


def run(
    argv: Sequence[str],
    *,
    input_text: str | None = None,
    check: bool = True,
    timeout: float = TOOL_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run a tool with a time limit; when `check`, a non-zero exit raises IsolationError."""
    try:
        proc = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise IsolationError(
            f"{argv[0]} is not installed", hint="install it or choose another --backend"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise IsolationError(f"`{' '.join(argv)}` did not finish within {timeout:g} s") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        first = detail[0] if detail else f"exit status {proc.returncode}"
        raise IsolationError(f"`{' '.join(argv)}` failed: {first}")
    return proc
