"""The report as PDF, printed by headless Chromium from the same HTML.

Chromium rather than an HTML→PDF library: the test image already has it (the HTML tests render
with it), its print engine lays out the page exactly as the browser shows it, and since
Chromium 131 it prints CSS page-margin boxes, so every page carries the case, the bundle id, the
verdict and "Page N of M" from the report's own @page rule. The profile is a fresh temporary
directory; the page has no script and no external asset, so nothing runs and nothing is fetched
(turning scripts off in Chromium also stops --print-to-pdf from writing anything)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from manifest.errors import UsageError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 600


def find_browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise UsageError(
        "no Chromium found to print the PDF (looked for " + ", ".join(BROWSERS) + ")",
        "install it (Debian: apt-get install chromium), or write the HTML report without --pdf",
    )


def html_to_pdf(html: str, browser: str | None = None) -> bytes:
    """The PDF bytes of `html`, printed on A4 by headless Chromium."""
    browser = browser or find_browser()
    with tempfile.TemporaryDirectory(prefix="sealbox-report-") as tmp:
        src, pdf = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(html, encoding="utf-8")
        command = [
            browser,
            "--headless",
            "--no-sandbox",  # as root Chromium will not start otherwise; our page has no script
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            src.as_uri(),
        ]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise UsageError(
                f"{browser} did not print the PDF within {TIMEOUT_S} s", "try again, or use the HTML"
            ) from None
        except OSError as exc:
            raise UsageError(f"cannot run {browser}: {exc.strerror}") from exc
        data = pdf.read_bytes() if pdf.is_file() else b""
        if proc.returncode != 0 or not data.startswith(b"%PDF-"):
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise UsageError(
                f"{browser} could not print the PDF (exit {proc.returncode}: {last})",
                "write the HTML report without --pdf and print it from a browser",
            )
        return data
