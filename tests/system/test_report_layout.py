"""The custody report as headless Chromium lays it out, at 5 and at 500 custody events: no text
covers other text (bounding boxes from the DOM, SVG labels included), every table and cell fits an
A4 page's width, no `custody/continuation.jsonl:N` token or fingerprint is split over lines, and
every custody event is in the chain-of-custody table and in the sentences."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.support.browser import layout
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
