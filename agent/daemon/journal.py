"""The agent's durable memory of orders: `<state>/orders/<order id>.json`.

An order id is claimed by creating its file (O_EXCL, fsynced with its directory) before anything
is done: a second copy of the order, now or after any restart, finds the file and is refused as
replayed. The file then follows the order (`accepted` -> `running` -> `done` | `failed`), so a
run killed mid-order finds it `running` and finishes it, once."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from manifest.format.timefmt import now_rfc3339

if TYPE_CHECKING:
    from pathlib import Path

PHASES = ("accepted", "running", "done", "failed")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    def __init__(self, state: Path) -> None:
        self.dir = state / "orders"
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, order_id: str) -> Path:
        return self.dir / f"{order_id}.json"

    def claim(self, order_id: str, entry: dict[str, Any]) -> bool:
        """Record `order_id` as accepted; False when it was claimed before (a replay)."""
        data = json.dumps({**entry, "phase": "accepted", "accepted_at": now_rfc3339()}, sort_keys=True)
        try:
            fd = os.open(self.path(order_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        try:
            os.write(fd, data.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self.dir)
        return True

    def load(self, order_id: str) -> dict[str, Any]:
        return dict(json.loads(self.path(order_id).read_text()))

    def update(self, order_id: str, **changes: Any) -> dict[str, Any]:
        """Replace the entry atomically (write, fsync, rename): a kill leaves old or new, never half."""
        entry = {**self.load(order_id), **changes}
        tmp = self.dir / f".{order_id}.tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(entry, sort_keys=True))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path(order_id))
        _fsync_dir(self.dir)
        return entry

    def unfinished(self) -> list[dict[str, Any]]:
        """Orders accepted or running when the last run stopped, oldest first."""
        found = []
        for path in self.dir.glob("*.json"):
            try:
                entry = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(entry, dict) and entry.get("phase") in ("accepted", "running"):
                found.append(entry)
        return sorted(found, key=lambda e: str(e.get("accepted_at")))

    def _newest_first(self) -> list[dict[str, Any]]:
        entries = []
        for path in self.dir.glob("*.json"):
            try:
                entries.append(dict(json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(entries, key=lambda e: str(e.get("accepted_at")), reverse=True)

    def last(self) -> dict[str, Any] | None:
        """The most recently accepted order's entry (for the heartbeat)."""
        entries = self._newest_first()
        return entries[0] if entries else None

    def last_bundle(self) -> dict[str, Any] | None:
        """The details of the newest order that sealed a bundle (for the heartbeat)."""
        for entry in self._newest_first():
            details = entry.get("details") or {}
            if entry.get("phase") == "done" and details.get("bundle"):
                return {
                    "order": entry.get("id"),
                    **{k: details.get(k) for k in ("bundle", "verified", "stored")},
                }
        return None
