"""The isolation state file: what was applied, by whom, why, and what the ruleset was before.

Default `/var/lib/sealbox/isolation.json`; the directory can be moved with `SEALBOX_STATE_DIR`
(tests do, because `ip netns exec` shares the file system). Mode 0600, written atomically
(temporary file in the same directory, fsync, rename, fsync of the directory).

The record is written *before* anything changes (phase `applying`: the ruleset about to be
loaded and the snapshot of the ruleset before), then moved through `checking`, `isolated` and
`restoring`, so that a kill at any point leaves a record that `status` names and `restore`
undoes. Commands that change isolation hold `isolation.lock` (flock, released by the kernel
even on SIGKILL): a record in `checking` while nobody holds the lock is a `--check` that was
killed.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manifest.errors import IsolationError

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_STATE_DIR = Path("/var/lib/sealbox")
STATE_NAME = "isolation.json"
LOG_NAME = "isolation-log.jsonl"
LOCK_NAME = "isolation.lock"
FORMAT = 2
PHASES = ("applying", "checking", "isolated", "restoring")


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
    if isinstance(data, dict) and data.get("format") == 1:
        return _from_format_1(data)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise IsolationError(f"{path} is not a sealbox isolation state (format {FORMAT})")
    return data


def _from_format_1(data: dict[str, Any]) -> dict[str, Any]:
    """A record written by the previous version (an isolation made before an upgrade): its
    snapshot becomes views, its custody target gains the case."""
    snap = data.get("snapshot_before") or {}
    views: dict[str, Any] = {}
    if snap.get("nft_text") is not None:
        views["nft list ruleset"] = snap["nft_text"]
    else:
        for old, new in (("iptables_save", "iptables-save"), ("ip6tables_save", "ip6tables-save")):
            if snap.get(old) is not None:
                views[new] = snap[old]
    target = data.get("custody_target") or {}
    return {
        **data,
        "format": FORMAT,
        "state": "isolated",
        "snapshot_before": {
            "taken_at": snap.get("taken_at"),
            "nft_json": snap.get("nft_json"),
            "views": views,
        },
        "custody_target": {"case": data.get("case", ""), "ledger": None, **target} if target else {},
        "custody": data.get("custody", []),
    }


def clear() -> None:
    state_path().unlink(missing_ok=True)


def append_log(record: dict[str, Any]) -> None:
    """One JSON line per isolate / restore / rollback / expiry, kept beside the state file."""
    path = state_dir() / LOG_NAME
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")


@contextmanager
def locked(*, wait: bool = True) -> Iterator[bool]:
    """Hold the isolation lock; yields False (without waiting) when `wait` is off and another
    sealbox holds it."""
    path = state_dir() / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
