"""`sealbox report --pdf` at 5 and 500 custody events, read back with poppler: every page carries
the case, the bundle id, the verdict and "Page N of M"; every custody event is in it; no word
covers another (pdftotext -bbox); pdftoppm renders the pages (kept beside the test's files to be
looked at)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from manifest.format import bagit
from tests.support.browser import pdf_pages, pdf_word_overlaps, render_pages
from tests.support.env import clear_flags, require_tool
from tests.support.report import Story

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="module", params=[5, 500], ids=["5-events", "500-events"])
def story(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    base = tmp_path_factory.mktemp(f"report-pdf-{request.param}")
    story = Story(base, request.param)
    yield story
    clear_flags(base / "bundles")


def _bundle_id(story: Story) -> str:
    return bagit.parse_bag_info((story.bundle / "bag-info.txt").read_bytes())["Sealbox-Bundle-Id"]


def test_every_page_has_case_bundle_id_verdict_and_number(story: Story) -> None:
    require_tool("chromium")
    for tool in ("pdftotext", "pdfinfo", "pdftoppm"):
        require_tool(tool)
    pdf = story.report(story.bundle.parent.parent / "report.pdf", "--pdf")
    assert pdf.read_bytes().startswith(b"%PDF-")
    pages = pdf_pages(pdf)
    assert len(pages) >= (2 if story.events == 5 else 20)
    bundle_id = _bundle_id(story)
    for n, text in enumerate(pages, start=1):
        assert f"Case OKC-2026-0042 · bundle id {bundle_id}" in text, n
        assert re.search(r"\bVERIFIED\b", text) and "NOT VERIFIED" not in text, n
        assert f"Page {n} of {len(pages)}" in text, n
    whole = "\n".join(pages)
    sealed = sum(1 for _ in (story.bundle / "custody" / "custody.jsonl").open("rb"))
    for seq in range(1, story.events + 1):
        where = (
            f"custody/custody.jsonl:{seq}" if seq <= sealed else f"custody/continuation.jsonl:{seq - sealed}"
        )
        assert whole.count(where) >= 2, where  # in the custody form and in the sentences
    assert pdf_word_overlaps(pdf) == []
    pictures = render_pages(pdf, pdf.parent / "page", 1, 3)
    assert len(pictures) == min(3, len(pages)) and all(p.stat().st_size > 10_000 for p in pictures)


@pytest.mark.parametrize("story", [5], indirect=True, ids=["5-events"])
def test_a_bundle_that_does_not_verify_says_so_on_every_page(story: Story, tmp_path: Path) -> None:
    """The police, who trust none of these keys, get NOT VERIFIED in every page's header."""
    require_tool("chromium")
    require_tool("pdftotext")
    pdf = tmp_path / "untrusted.pdf"
    proc = story.police.cli("report", story.bundle, "--pdf", "--out", pdf)
    assert proc.returncode == 1, proc.stderr
    assert "NOT VERIFIED" in proc.stderr
    pages = pdf_pages(pdf)
    for n, text in enumerate(pages, start=1):
        assert "NOT VERIFIED" in text.splitlines()[0], n
        assert _bundle_id(story) in text and f"Page {n} of {len(pages)}" in text, n
