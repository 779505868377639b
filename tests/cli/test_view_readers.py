"""metadata/ views read by the real tools investigators use: mactime reads the bodyfile, xmllint
validates DFXML against its schema, case_validate passes the CASE graph."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

from manifest.views import write_views
from tests.support.env import ASSETS, require_tool
from tests.support.views import CTX, DirWriter, awkward_items, write_items

if TYPE_CHECKING:
    from pathlib import Path


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
