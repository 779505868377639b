"""`sealbox mail ls|export`: the mail in a bundle, for investigators (logic: collectors/mail_query.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from agent.commands.common import print_json
from collectors import mail_query
from collectors.mail_query import MailFilter


def _bundle_options(func: Any) -> Any:
    func = click.option(
        "--unverified",
        is_flag=True,
        help="Read the bundle even if it does not verify (said loudly; for triage of a damaged copy).",
    )(func)
    func = click.option("--trust", multiple=True, metavar="FP", help="Trust this signer fingerprint.")(func)
    return click.argument("bundle", type=click.Path(path_type=Path, file_okay=False))(func)


def _checked(bundle: Path, trust: tuple[str, ...], unverified: bool) -> str:
    """Verify first; the bundle id for provenance. A bundle read with --unverified is said so."""
    from agent.commands.verify import full_fingerprints  # verify's imports: only this command's

    report = mail_query.check_bundle(bundle, full_fingerprints(trust), unverified=unverified)
    if not report.ok:
        click.echo(
            f"sealbox: WARNING: {bundle} does NOT verify ({len(report.findings)} finding(s));"
            " reading it anyway (--unverified): nothing shown can be relied on",
            err=True,
        )
    return report.info.get("Sealbox-Bundle-Id", "unknown")


@click.group()
def mail() -> None:
    """The mail indexed in a bundle: list, search, export (the bundle is verified first)."""


def _cut(value: Any, width: int) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


@mail.command("ls")
@_bundle_options
@click.option("--from", "sender", metavar="TEXT", help="From contains TEXT (case-insensitive).")
@click.option("--to", metavar="TEXT", help="To, Cc or Bcc contains TEXT.")
@click.option("--subject", metavar="TEXT", help="Subject contains TEXT.")
@click.option("--since", metavar="DATE", help="Dated on or after DATE (YYYY-MM-DD or RFC 3339, UTC).")
@click.option("--until", metavar="DATE", help="Dated on or before DATE (a whole day when YYYY-MM-DD).")
@click.option("--has-attachment", is_flag=True, help="Only messages with attachments.")
@click.option("--folder", metavar="TEXT", help="PST/OST folder (or mailbox path) contains TEXT.")
@click.option("--json", "as_json", is_flag=True, help="The matching index lines as a JSON list.")
def ls(
    bundle: Path,
    trust: tuple[str, ...],
    unverified: bool,
    sender: str | None,
    to: str | None,
    subject: str | None,
    since: str | None,
    until: str | None,
    has_attachment: bool,
    folder: str | None,
    as_json: bool,
) -> int:
    """List the messages in BUNDLE, oldest first; KEY is what `mail export` takes."""
    _checked(bundle, trust, unverified)
    wanted = MailFilter(
        sender=sender,
        to=to,
        subject=subject,
        since=mail_query.parse_when(since) if since else None,
        until=mail_query.parse_when(until, end_of_day=True) if until else None,
        has_attachment=has_attachment,
        folder=folder,
    )
    found = mail_query.list_messages(bundle, wanted)
    if as_json:
        print_json(found)
        return 0
    click.echo(f"{'DATE (UTC)':<20} {'FROM':<30} {'SUBJECT':<40} {'ATT':>3} {'FOLDER':<36} KEY")
    for e in found:
        date = (e.get("date_utc") or "")[:19].replace("T", " ")
        mark = " !" if e.get("parse_error") else ("  R" if e.get("recovered") else "")
        count = len(e.get("attachments") or [])
        click.echo(
            f"{date:<20} {_cut(e.get('from'), 30):<30} {_cut(e.get('subject'), 40):<40} "
            f"{count:>3} {_cut(mail_query.folder_of(e), 36):<36} {e.get('key')}{mark}"
        )
    click.echo(f"{len(found)} message(s)  (R = recovered item, ! = parse error)", err=True)
    return 0


@mail.command("export")
@_bundle_options
@click.argument("message_id", metavar="MESSAGE")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False), help="The .eml file.")
@click.option(
    "--attachments",
    "attachments_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Also write each attachment here; each hash is checked against the index.",
)
def export(
    bundle: Path,
    trust: tuple[str, ...],
    unverified: bool,
    message_id: str,
    out: Path,
    attachments_dir: Path | None,
) -> int:
    """Write MESSAGE (a KEY, Message-ID or SHA-256 prefix) of BUNDLE as .eml with provenance."""
    bundle_id = _checked(bundle, trust, unverified)
    entry = mail_query.resolve(bundle, message_id)
    done = mail_query.export_message(bundle, entry, out, bundle_id, attachments_dir)
    click.echo(f"{out}: message {entry.get('key')} (sha256 {done.sha256})", err=True)
    for path, digest in done.attachments:
        click.echo(f"{path}: sha256 {digest} (matches the index)", err=True)
    return 0


COMMANDS = [mail]
