"""`sealbox report`: the custody report as one self-contained HTML file, or a PDF of it."""

from __future__ import annotations

import os
from pathlib import Path

import click

from agent.commands.verify import full_fingerprints
from manifest.errors import UsageError
from manifest.handover.report import DEFAULT_ITEM_ROWS, render_report, verdict_word
from manifest.handover.report.pdf import find_browser, html_to_pdf
from manifest.verify import verify_bundle


def _write_new(out: Path, data: bytes) -> None:
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise UsageError(f"{out} already exists", "choose another --out") from None
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--out", "out", type=click.Path(path_type=Path, dir_okay=False), help="Write here (default: stdout)."
)
@click.option("--pdf", "as_pdf", is_flag=True, help="A PDF (printed by headless Chromium) instead of HTML.")
@click.option("--trust", multiple=True, metavar="FP", help="Trust this signer fingerprint (repeatable).")
@click.option(
    "--rows", type=click.IntRange(0), default=DEFAULT_ITEM_ROWS, show_default=True, help="Item rows."
)
def report(bundle: Path, out: Path | None, as_pdf: bool, trust: tuple[str, ...], rows: int) -> int:
    """Verify BUNDLE and write its custody report (HTML, or PDF with --pdf) for a case file."""
    if as_pdf and out is None:
        raise UsageError("--pdf needs --out FILE", "a PDF is not written to a terminal")
    if out is not None and (out.exists() or out.is_symlink()):
        raise UsageError(f"{out} already exists", "choose another --out")
    browser = find_browser() if as_pdf else None  # before the verification, which can take long
    result = verify_bundle(bundle, full_fingerprints(trust))
    html = render_report(bundle, result, rows=rows)
    if out is None:
        click.echo(html, nl=False)
    else:
        _write_new(out, html_to_pdf(html, browser) if as_pdf else html.encode())
        verdict = verdict_word(result)
        if result.findings:
            verdict += f" ({len(result.findings)} finding(s))"
        click.echo(f"{out}: custody report for {bundle.name}, {verdict}", err=True)
    return 0 if result.ok else 1


COMMANDS = [report]
