"""Item records and a stand-in bundle writer for the view tests (tests/unit/test_views.py,
test_view_registry.py)."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING

from manifest.format.timefmt import rfc3339_ns
from manifest.signing.keys import Identity
from manifest.views import ViewContext

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CTX = ViewContext(
    case="OKC-2026-0042",
    bundle_id="2b0c3f8e-3c4e-4d7e-9a53-1f5d2f1c0a11",
    host="clerk-pc-07",
    performer=Identity("Ida Responder", "IT responder", "City IT", "SHA256:" + "ab" * 32),
    started="2026-03-02T10:00:00.000000000Z",
    ended="2026-03-02T10:05:00.123456789Z",
    command_line="sealbox collect --case OKC-2026-0042",
)
T0 = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z


def item(n: int, **over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": f"{n:06d}",
        "kind": "file",
        "collector": "logs/linux-auth",
        "source_path": f"/var/log/auth.log.{n}",
        "stored_as": f"data/files/var/log/auth.log.{n}",
        "size": 100 + n,
        "sha256": f"{n:064x}",
        "mode": 0o100640,
        "uid": 0,
        "gid": 4,
        "owner": "root",
        "group": "adm",
        "inode": 1000 + n,
        "device": 2049,
        "nlink": 1,
        "status": "ok",
    }
    for key, ns in (("mtime", T0 + n), ("atime", T0 + 2 * n), ("ctime", T0 + 3 * n), ("birthtime", T0)):
        base[f"{key}_ns"] = ns
        base[key] = rfc3339_ns(ns)
    base.update(over)
    return base


def awkward_items() -> list[dict[str, object]]:
    """Names and kinds that break naive writers: pipes, newlines, non-UTF-8, <&>, no birth time."""
    return [
        item(1),
        item(2, source_path="/home/a|b\nc <&> \udcff.txt", stored_as="data/files/home/a=7Cb=0Ac <&> =FF.txt"),
        item(
            3,
            kind="symlink",
            stored_as=None,
            sha256=None,
            size=None,
            link_target="/etc/passwd",
            mode=0o120777,
        ),
        item(
            4, kind="directory", stored_as=None, sha256=None, mode=0o40755, birthtime=None, birthtime_ns=None
        ),
        item(5, kind="special", stored_as=None, sha256=None, mode=0o10644),
        item(6, status="error", error="permission denied", stored_as=None, sha256=None, size=None),
        {
            "id": "000007",
            "kind": "volatile",
            "collector": "volatile/processes",
            "source_path": None,
            "stored_as": "data/volatile/processes.json",
            "size": 10,
            "sha256": "00" * 32,
            "status": "ok",
        },
    ]


class DirWriter:
    """Stand-in for the bundle writer: write-once files under metadata/."""

    def __init__(self, root: Path) -> None:
        self.root = self.path = root
        (root / "metadata").mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def open_metadata(self, name: str) -> Iterator[object]:
        with (self.root / "metadata" / name).open("xb") as fh:
            yield fh


def write_items(path: Path, items: list[dict[str, object]]) -> Path:
    with path.open("w") as fh:
        for it in items:
            fh.write(json.dumps(it, sort_keys=True, separators=(",", ":")) + "\n")
    return path
