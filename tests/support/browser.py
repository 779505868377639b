"""Headless Chromium for the report tests: the layout of a page as the browser computes it (every
text box, table and unbreakable token, read from the DOM), and PDF pages as text and pictures."""

from __future__ import annotations

import html
import json
import re
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

# Runs in the page after layout: every line box of every text node (SVG text by its element),
# every table cell whose content is wider than the cell, every token split over lines.
_PROBE = r"""
<script>
(function () {
  const boxes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let node, id = 0;
  while ((node = walker.nextNode())) {
    const el = node.parentElement;
    if (!node.textContent.trim() || el.closest('svg') || el.closest('#probe')) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      const text = node.textContent.trim().slice(0, 40);
      if (r.width > 0 && r.height > 0) boxes.push([id, r.left, r.top, r.right, r.bottom, text]);
    }
    id++;
  }
  for (const t of document.querySelectorAll('svg text')) {
    const r = t.getBoundingClientRect();
    boxes.push([id++, r.left, r.top, r.right, r.bottom, t.textContent.slice(0, 40)]);
  }
  const body = document.body.getBoundingClientRect();
  const tables = [...document.querySelectorAll('table')].map(t => {
    const r = t.getBoundingClientRect(); return [t.className, r.left, r.right];
  });
  const overflowing = [...document.querySelectorAll('td, th, dd')]
    .filter(c => c.scrollWidth > c.clientWidth + 1)
    .map(c => [c.scrollWidth, c.clientWidth, c.textContent.slice(0, 60)]);
  const split = [...document.querySelectorAll('.tok, .fp')]
    .filter(t => t.getClientRects().length > 1).map(t => t.textContent);
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({
    boxes, tables, overflowing, split, body: [body.left, body.right],
    page_width: document.documentElement.scrollWidth, view_width: window.innerWidth,
    tokens: document.querySelectorAll('.tok, .fp').length,
  });
  document.body.appendChild(out);
})();
</script>
"""


@dataclass
class Layout:
    boxes: list[list[Any]]
    tables: list[list[Any]]
    overflowing: list[list[Any]]
    split: list[str]
    body: list[float]
    page_width: int
    view_width: int
    tokens: int

    def overlaps(self, tolerance: float = 0.5) -> list[tuple[str, str]]:
        """Pairs of text boxes (of different text nodes) that cover each other."""
        boxes = sorted(self.boxes, key=lambda b: b[2])
        found = []
        active: list[list[Any]] = []
        for box in boxes:
            active = [a for a in active if a[4] > box[2] + tolerance]
            for a in active:
                if a[0] == box[0]:
                    continue
                if (
                    min(a[3], box[3]) - max(a[1], box[1]) > tolerance
                    and min(a[4], box[4]) - max(a[2], box[2]) > tolerance
                ):
                    found.append((a[5], box[5]))
            active.append(box)
        return found


def chromium_flags(profile: Path) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]


def layout(chromium: str, page: Path, work: Path, width: int = 800) -> Layout:
    """The layout of `page` in a window `width` CSS pixels wide (800: an A4 sheet's width)."""
    probe = work / f"probe-{page.name}"
    text = page.read_text(encoding="utf-8")
    probe.write_text(text.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    proc = subprocess.run(
        [
            chromium,
            *chromium_flags(work / "profile-probe"),
            f"--window-size={width},1000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"no probe output from chromium: {proc.stderr[-2000:]}"
    return Layout(**json.loads(html.unescape(match.group(1))))


def pdf_pages(pdf: Path) -> list[str]:
    """The text of each page of `pdf` (pdftotext, one run per page)."""
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]
    return [
        subprocess.run(
            ["pdftotext", "-layout", "-f", str(n), "-l", str(n), str(pdf), "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for n in range(1, pages + 1)
    ]


def render_pages(pdf: Path, out_prefix: Path, first: int = 1, last: int = 3, dpi: int = 60) -> list[Path]:
    """PNG pictures of pages first..last (pdftoppm), to look at."""
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-f", str(first), "-l", str(last), "-png", str(pdf), str(out_prefix)],
        check=True,
        capture_output=True,
    )
    return sorted(out_prefix.parent.glob(out_prefix.name + "-*.png"))


def pdf_word_overlaps(pdf: Path, tolerance: float = 0.6) -> list[tuple[int, str, str]]:
    """Words of the PDF (pdftotext -bbox) that cover other words on the same page."""
    out = subprocess.run(
        ["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for number, page in enumerate(re.findall(r"<page .*?</page>", out, re.S), start=1):
        words = [
            (float(a), float(b), float(c), float(d), html.unescape(w))
            for a, b, c, d, w in re.findall(
                r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>', page
            )
        ]
        words.sort(key=lambda w: w[1])
        active: list[tuple[float, float, float, float, str]] = []
        for w in words:
            active = [a for a in active if a[3] > w[1] + tolerance]
            for a in active:
                dx = min(a[2], w[2]) - max(a[0], w[0])
                dy = min(a[3], w[3]) - max(a[1], w[1])
                if dx > tolerance and dy > tolerance:
                    found.append((number, a[4], w[4]))
            active.append(w)
    return found


def screenshot(chromium: str, page: Path, out: Path, work: Path, width: int = 800, height: int = 3000) -> str:
    """A PNG of the top of `page` (to look at); returns Chromium's console messages, if any."""
    proc = subprocess.run(
        [
            chromium,
            *chromium_flags(work / "profile-shot"),
            f"--window-size={width},{height}",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={out}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-2000:]
    return "\n".join(line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line)
