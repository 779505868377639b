"""The isolation state file: what was applied, by whom, why, and what the ruleset was before.

Default `/var/lib/sealbox/isolation.json`; the directory can be moved with `SEALBOX_STATE_DIR`
(tests do, because `ip netns exec` shares the file system). Mode 0600, written atomically
(temporary file in the same directory, fsync, rename, fsync of the directory).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from manifest.errors import IsolationError

DEFAULT_STATE_DIR = Path("/var/lib/sealbox")
STATE_NAME = "isolation.json"
LOG_NAME = "isolation-log.jsonl"
FORMAT = 1


def state_dir() -> Path:
    return Path(os.environ.get("SEALBOX_STATE_DIR") or DEFAULT_STATE_DIR)


def state_path() -> Path:
    return state_dir() / STATE_NAME


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save(state: dict[str, Any]) -> Path:
    path = state_path()
    payload = json.dumps({"format": FORMAT, **state}, indent=2, sort_keys=True) + "\n"
    write_private(path, payload.encode())
    return path


def load() -> dict[str, Any] | None:
    """The recorded isolation, or None when sealbox has none on record."""
    path = state_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IsolationError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IsolationError(
            f"{path} is not valid JSON (line {exc.lineno})",
            hint="inspect it; `nft list table inet sealbox` shows what is loaded",
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise IsolationError(f"{path} is not a sealbox isolation state (format {FORMAT})")
    return data


def clear() -> None:
    state_path().unlink(missing_ok=True)


def append_log(record: dict[str, Any]) -> None:
    """One JSON line per isolate / restore / rollback / expiry, kept beside the state file."""
    path = state_dir() / LOG_NAME
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
