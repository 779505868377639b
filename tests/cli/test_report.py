"""The custody report: self-contained HTML that renders in real headless Chromium without errors."""

from __future__ import annotations

import json
import re
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.support.custody import collect_bundle, make_person
from tests.support.env import clear_flags, require_tool

if TYPE_CHECKING:
    from pathlib import Path

ARTIFACTS = "report-screenshot.png"


@pytest.fixture
def report_html(tmp_path: Path) -> Path:
    it = make_person(tmp_path, "it")
    (tmp_path / "bundles").mkdir()
    bundle = collect_bundle(it, tmp_path, tmp_path / "bundles")
    it.cli(
        "custody",
        "add",
        bundle,
        "--event",
        "note",
        "--reason",
        "device left powered & isolated <ok>",
        check=True,
    )
    out = tmp_path / "report.html"
    proc = it.cli("report", bundle, "--out", out)
    assert proc.returncode == 0, proc.stderr
    yield out
    clear_flags(tmp_path / "bundles")


def test_report_content_is_complete_and_self_contained(report_html: Path) -> None:
    html = report_html.read_text()
    for needle in (
        "case OKC-2026-0042",
        "Bundle id",
        "Collection window",
        "VERIFIED",
        "Custody timeline",
        "<svg",
        "Items by collector and status",
        "files/cli",
        "Email index",
        "Incident report",
        "Next steps",
        "Report the incident to City IT",
        "public-records",
        "Ida Responder",
        "device left powered &amp; isolated &lt;ok&gt;",
    ):
        assert needle in html, needle
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html), "external asset"
    assert "<script" not in html
    assert "@media print" in html


def test_report_renders_in_headless_chromium(report_html: Path, tmp_path: Path) -> None:
    chromium = require_tool("chromium")
    shot = tmp_path / ARTIFACTS
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chrome-profile'}",
            "--window-size=1200,2400",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={shot}",
            report_html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 20_000
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chrome-profile2'}",
            "--dump-dom",
            report_html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Evidence custody report" in dom.stdout and "<svg" in dom.stdout
    print(json.dumps({"screenshot": str(shot)}))
