"""metadata/ views: mactime reads the bodyfile, xmllint validates DFXML, case_validate passes."""

from __future__ import annotations

import contextlib
import json
import subprocess
import tracemalloc
from typing import TYPE_CHECKING

from manifest.format.timefmt import rfc3339_ns
from manifest.views import ViewContext, write_views
from tests.support.env import ASSETS, require_tool

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CTX = ViewContext(
    case="OKC-2026-0042",
    bundle_id="2b0c3f8e-3c4e-4d7e-9a53-1f5d2f1c0a11",
    host="clerk-pc-07",
    performer_name="Ida Responder",
    performer_role="IT responder",
    performer_organization="City IT",
    performer_key="SHA256:" + "ab" * 32,
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


def make_views(tmp_path: Path, items: list[dict[str, object]]) -> Path:
    items_path = write_items(tmp_path / "items.jsonl", items)
    write_views(DirWriter(tmp_path / "bundle"), items_path, CTX)
    return tmp_path / "bundle" / "metadata"


def test_bodyfile_read_by_mactime(tmp_path: Path) -> None:
    mactime = require_tool("mactime")
    meta = make_views(tmp_path, awkward_items())
    body = (meta / "bodyfile.txt").read_text()
    lines = body.splitlines()
    assert len(lines) == 6, "volatile snapshots have no file times and are left out"
    assert all(line.count("|") == 10 and line.startswith("0|") for line in lines)
    assert "/home/a=7Cb=0Ac <&> =FF.txt" in body
    assert "/var/log/auth.log.3 -> /etc/passwd" in body
    assert "|d/drwxr-xr-x|" in body and "|l/lrwxrwxrwx|" in body and "|p/prw-r--r--|" in body
    proc = subprocess.run(
        [mactime, "-b", str(meta / "bodyfile.txt"), "-d", "-z", "UTC"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "Thu Jan 01 2026 00:00:00" in proc.stdout
    assert "/var/log/auth.log.1" in proc.stdout
    assert ',1001,"/var/log/auth.log.1"' in proc.stdout  # inode column of item 1


def test_dfxml_valid_against_schema(tmp_path: Path) -> None:
    xmllint = require_tool("xmllint")
    meta = make_views(tmp_path, awkward_items())
    proc = subprocess.run(
        [xmllint, "--noout", "--schema", str(ASSETS / "dfxml/dfxml.xsd"), str(meta / "dfxml.xml")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    text = (meta / "dfxml.xml").read_text()
    assert text.count("<fileobject>") == 6
    assert '<hashdigest type="sha256">' + f"{1:064x}" + "</hashdigest>" in text
    assert "<mtime>2026-01-01T00:00:00.123456790Z</mtime>" in text
    assert "&lt;&amp;&gt;" in text and "<error>permission denied</error>" in text


def test_case_jsonld_passes_case_validate(tmp_path: Path) -> None:
    case_validate = require_tool("case_validate")
    meta = make_views(tmp_path, awkward_items())
    graph = json.loads((meta / "case.jsonld").read_text())
    nodes = graph["@graph"]
    action = next(n for n in nodes if n["@type"] == "case-investigation:InvestigativeAction")
    files = [n for n in nodes if n["@type"] == "observable:File"]
    assert len(action["action:result"]) == len(files) == 6
    assert {r["@id"] for r in action["action:result"]} == {f["@id"] for f in files}
    proc = subprocess.run(
        [case_validate, str(meta / "case.jsonld")], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Conforms: True" in proc.stdout


def test_views_stream_without_growing_memory(tmp_path: Path) -> None:
    """Peak Python memory while writing views for 4000 items stays far below the items' size."""
    items_path = tmp_path / "items.jsonl"
    with items_path.open("w") as fh:
        for n in range(1, 4001):
            fh.write(json.dumps(item(n), sort_keys=True) + "\n")
    tracemalloc.start()
    try:
        write_views(DirWriter(tmp_path / "bundle"), items_path, CTX)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert items_path.stat().st_size > 2_000_000
    assert peak < 500_000, f"peak {peak} bytes: a view holds items in memory"


def test_plain_templates_render_exactly_what_the_general_rule_does() -> None:
    """The per-file hot path (one template per view) must not change a byte of any view."""
    from manifest.views import ViewSet, plain_file
    from manifest.views.case_jsonld import CaseView

    eligible = [
        item(1),
        item(2, birthtime=None, birthtime_ns=None),
        item(3, source_path="/home/ünïcode/файл отчёт.txt", size=0, uid=1000, gid=1000),
        item(4, source_path="/srv/it's (1) [copy] #2;x=y%20.log", atime_ns=-5, atime=rfc3339_ns(-5)),
        item(5, source_path="/a/b/", mode=0o100000, nlink=3),
    ]
    views = ViewSet(CTX)
    for it in eligible:
        assert plain_file(it), it
        for view in views.views:
            assert view.plain(it) == view.fragment(it), (view.name, it["source_path"])
    for it in awkward_items()[1:]:
        assert not plain_file(it), it["id"]
    rendered = views.render([*eligible, *awkward_items()])
    shown = [*eligible, *awkward_items()[:-1]]  # the volatile item has no file metadata
    body, dfxml, case = (b"".join(v.fragment(it) for it in shown) for v in views.views)
    assert rendered == [body, dfxml, *CaseView.split(case)]
    partial = item(6)
    del partial["nlink"]
    assert views.render([partial])[1] == views.views[1].fragment(partial)  # missing field: general rule


def test_case_item_ids_are_the_rfc4122_uuid5_of_bundle_and_item() -> None:
    import uuid

    from manifest.views.case_jsonld import _NS, _item_uuid

    for bundle in ("6b1d7f3e-0c1e-4d7a-9a51-000000000001", "another bundle"):
        for item_id in [f"{n:08d}" for n in range(1, 300)] + [7, "x/y"]:
            assert _item_uuid(bundle, item_id) == str(uuid.uuid5(_NS, f"{bundle}/{item_id}"))
