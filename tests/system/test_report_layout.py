"""The custody report as headless Chromium lays it out, at 5 and at 500 custody events: no text
covers other text (bounding boxes from the DOM, SVG labels included), every table and cell fits an
A4 page's width, no `custody/continuation.jsonl:N` token or fingerprint is split over lines, and
every custody event is in the chain-of-custody table and in the sentences."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

from manifest.handover.report import render_report
from tests.support.browser import layout, screenshot
from tests.support.env import clear_flags, require_tool
from tests.support.report import Story

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="module", params=[5, 500], ids=["5-events", "500-events"])
def story(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    base = tmp_path_factory.mktemp(f"report-{request.param}")
    story = Story(base, request.param)
    assert story.events == request.param
    yield story
    clear_flags(base / "bundles")


@pytest.fixture(scope="module")
def page(story: Story) -> Path:
    return story.report(story.bundle.parent.parent / "report.html")


def test_no_text_overlaps_and_everything_fits_the_page(story: Story, page: Path, tmp_path: Path) -> None:
    chromium = require_tool("chromium")
    seen = layout(chromium, page, tmp_path)
    assert len(seen.boxes) > 200
    assert seen.overlaps() == []
    assert seen.page_width <= seen.view_width, "the page scrolls sideways"
    for name, left, right in seen.tables:
        assert seen.body[0] - 0.5 <= left and right <= seen.body[1] + 0.5, name
    assert seen.overflowing == [], "cell content wider than its cell"
    assert seen.tokens > story.events
    assert seen.split == [], "tokens broken over lines"
    shot = page.parent / "report-screenshot.png"  # kept beside the bundle, to be looked at
    assert screenshot(chromium, page, shot, tmp_path) == ""
    assert shot.stat().st_size > 20_000


def test_every_custody_event_is_in_the_table_and_in_words(story: Story, page: Path) -> None:
    html = page.read_text()
    rows = re.findall(r'<tr id="custody-(\d+)">', html)
    words = re.findall(r'<li id="event-(\d+)">', html)
    expected = [str(n) for n in range(1, story.events + 1)]
    assert rows == expected and words == expected
    assert f"custody/continuation.jsonl:{story.events - 3}</span>" in html
    assert "OPEN: not accepted" in html


def test_the_layout_probe_sees_overlaps_overflow_and_split_tokens(tmp_path: Path) -> None:
    """The checks above can fail: a page with each fault is caught."""
    chromium = require_tool("chromium")
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><body style='width:600px'>"
        "<p style='position:absolute;top:10px;left:10px'>first label</p>"
        "<p style='position:absolute;top:12px;left:30px'>second label</p>"
        "<table style='width:900px'><tr><td>too wide</td></tr></table>"
        "<table style='table-layout:fixed;width:100px'><tr><td><span class='tok' style='white-space:nowrap'>"
        "custody/continuation.jsonl:1</span></td></tr></table>"
        "<div style='width:60px'><span class='tok'>custody/ continuation.jsonl:2</span></div>"
        "</body></html>"
    )
    seen = layout(chromium, page, tmp_path)
    assert ("first label", "second label") in seen.overlaps()
    assert any(right > seen.body[1] for _n, _l, right in seen.tables)
    assert any("continuation.jsonl:1" in cell[2] for cell in seen.overflowing)
    assert seen.split == ["custody/ continuation.jsonl:2"]


def test_items_and_email_tables_fit_with_long_names(tmp_path: Path) -> None:
    """Long paths, a 255-byte file name, long addresses and subjects wrap inside their cells."""
    chromium = require_tool("chromium")
    bundle = tmp_path / "bundle"
    (bundle / "metadata").mkdir(parents=True)
    long_dir = "/home/clerk/" + "/".join(f"folder-{n:02d}-with-a-long-name" for n in range(12))
    items = [
        {
            "id": f"{n:06d}",
            "kind": "file",
            "collector": "files/cli",
            "status": "ok",
            "size": 10**n,
            "source_path": f"{long_dir}/{'x' * 255 if n == 3 else 'report'}.txt",
            "sha256": f"{n:x}" * 64,
            "mtime": f"2026-11-0{n + 1}T10:00:00.123456789Z",
            "mtime_ns": 1_793_000_000 * 10**9 + n * 86400 * 10**9,
        }
        for n in range(6)
    ]
    (bundle / "metadata" / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    mails = [
        {
            "item": "000001",
            "source_path": f"{long_dir}/Outlook.pst",
            "format": "pst",
            "from": f"A Very Long Display Name <very.long.address.{n}@subdomain.attacker-example.org>",
            "to": "clerk@city.example, boss@city.example, records-custodian@city.example",
            "subject": "Überweisung " + "sehr dringend " * 8,
            "date_utc": f"2024-10-0{9 - n}T10:00:00Z",
            "sha256": "d" * 64,
            "key": f"0001:{n}:{'k' * 40}",
            "folder": "Inbox/" + "Unterordner/" * 6,
            "attachments": [{"name": "a.pdf"}],
        }
        for n in range(5)
    ]
    (bundle / "metadata" / "email-index.jsonl").write_text("".join(json.dumps(m) + "\n" for m in mails))
    page = tmp_path / "items.html"
    page.write_text(render_report(bundle, None))
    seen = layout(chromium, page, tmp_path)
    assert seen.overlaps() == []
    assert seen.overflowing == [] and seen.split == []
    assert seen.page_width <= seen.view_width
    html = page.read_text()
    assert html.index("2024-10-05") < html.index("2024-10-09")
