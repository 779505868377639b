"""`sealbox custody show|add`: read the whole chain of custody, or append one signed event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from agent.commands.common import key_options, load_signer, print_json, witness
from agent.isolation import ledger
from manifest.errors import NotABundleError, UsageError
from manifest.signing.custody import append_event_with_receipt, verify_chain
from manifest.signing.keys import KeyStore
from manifest.signing.receipts import check_custody_anchors

ADDABLE = ("note", "transferred", "verified")


def chain_rows(bundle: Path) -> tuple[list[dict[str, Any]], list[str], str]:
    """Each line with whether its link and signature hold, findings not tied to a line, and the
    receipt summary ("custody after seal: ...")."""
    if not (bundle / "custody").is_dir():
        raise NotABundleError(f"{bundle} has no custody/ directory", "give a sealbox bundle directory")
    findings, lines = verify_chain(bundle)
    store = KeyStore.default()
    trusted = store.trusted_fingerprints() | {k.identity.fingerprint for k in store.own_keys()}
    sealed = next((ln.event for ln in lines if ln.event and ln.event["event"] == "sealed"), None)
    anchors, summary = check_custody_anchors(
        bundle, str((sealed or {}).get("bundle", "")), lines, store, trusted
    )
    findings += anchors
    by_where: dict[str, list[str]] = {}
    for f in findings:
        by_where.setdefault(f.where, []).append(f.line())
    rows = []
    for line in lines:
        ev = line.event or {}
        actor_value = ev.get("actor")
        actor: dict[str, Any] = actor_value if isinstance(actor_value, dict) else {}
        problems = by_where.pop(line.where, [])
        rows.append(
            {
                "line": line.where,
                "seq": ev.get("seq"),
                "time": ev.get("time"),
                "event": ev.get("event"),
                "actor": {k: actor.get(k) for k in ("name", "role", "organization", "key")},
                "actor_trusted": actor.get("key") in trusted,
                "reason": ev.get("reason"),
                "details": ev.get("details"),
                "holds": not problems,
                "problems": problems,
            }
        )
    rest = [msg for msgs in by_where.values() for msg in msgs]
    return rows, rest, summary


@click.group()
def custody() -> None:
    """Show or extend a bundle's chain of custody."""


@custody.command()
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False), required=False)
@click.option("--case", "case", metavar="ID", help="Show the case ledger (containment before any bundle).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(bundle: Path | None, case: str | None, as_json: bool) -> int:
    """Show every custody event of BUNDLE (or of a case ledger) and whether each link and
    signature holds."""
    if (bundle is None) == (case is None):
        raise UsageError("give either a BUNDLE or --case ID")
    if bundle is None:
        bundle = ledger.case_dir(str(case))
        if not bundle.is_dir():
            raise UsageError(f"case {case!r} has no ledger at {bundle}", "check the case id and SEALBOX_HOME")
    rows, rest, summary = chain_rows(bundle)
    ok = all(r["holds"] for r in rows) and not rest
    if as_json:
        print_json({"bundle": str(bundle), "holds": ok, "events": rows, "problems": rest, "anchor": summary})
        return 0 if ok else 1
    for r in rows:
        a = r["actor"]
        mark = "ok " if r["holds"] else "BAD"
        trust = "trusted" if r["actor_trusted"] else "untrusted"
        click.echo(
            f"{mark} {r['seq']!s:>3}  {str(r['time'] or '')[:23]}  {r['event'] or '?':<20} "
            f"{a['name']} ({a['role']}, {a['organization']}) {a['key']} [{trust}]"
        )
        if r["reason"]:
            click.echo(f"          reason: {r['reason']}")
        for problem in r["problems"]:
            click.echo(f"          FAIL {problem}")
    for problem in rest:
        click.echo(f"FAIL {problem}")
    click.echo(summary)
    click.echo(
        f"chain {'holds' if ok else 'is BROKEN'}: {len(rows)} event(s) in {bundle}",
        err=not ok,
    )
    return 0 if ok else 1


@custody.command()
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False))
@click.option("--event", "event", required=True, type=click.Choice(ADDABLE), help="What happened.")
@click.option("--reason", required=True, help="Why, in words a court can read.")
@click.option("--to", "to", help="For 'transferred': who now holds the evidence (name, organization).")
@key_options
def add(
    bundle: Path, event: str, reason: str, to: str | None, key_ref: str | None, passphrase_file: Path | None
) -> None:
    """Append one signed event to BUNDLE's custody/continuation.jsonl."""
    if event == "transferred" and not to:
        raise UsageError("a 'transferred' event needs --to NAME", 'e.g. --to "Det. J. Doe, City PD"')
    if not reason.strip():
        raise UsageError("--reason must not be empty", "say why this event is recorded")
    signer = load_signer(key_ref, passphrase_file)
    details: dict[str, Any] = {"to": to} if to else {}
    done = append_event_with_receipt(bundle, signer, event, details, reason)
    click.echo(f"appended custody event {done.event['seq']} ({event}) signed by {signer.fingerprint}")
    click.echo(f"receipt: {done.receipt}")
    witness(bundle, done.event)


@custody.command("export")
@click.option("--case", "case", required=True, metavar="ID", help="The case whose ledger to export.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory to write custody/custody.jsonl into (read it with `sealbox custody show OUT`).",
)
def export_ledger(case: str, out: Path) -> None:
    """Copy a case ledger (the signed containment events of a case) for the case file."""
    written = ledger.export(case, out)
    click.echo(f"exported the ledger of case {case} to {written}")


COMMANDS = [custody]
