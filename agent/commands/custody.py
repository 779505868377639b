"""`sealbox custody show|add|transfer|accept|export`: read the chain of custody, or append one
signed event (SPEC §4, the court fields of §4.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from agent.commands.common import key_options, load_signer, print_json, witness
from agent.isolation import ledger
from manifest.errors import NotABundleError, UsageError
from manifest.signing.custody import (
    DISPOSITIONS,
    accept_details,
    append_event_with_receipt,
    authority_from,
    check_transfers,
    current_exhibit,
    verify_chain,
)
from manifest.signing.keys import FP_PREFIX, KeyStore, normalize_fp
from manifest.signing.receipts import check_custody_anchors

# What `custody add` may append; transfers and accepts have their own commands (and
# `--event transferred` stays for scripts written before them).
ADDABLE = ("note", "verified", "examined", "copied", "stored", "labelled", "disposed", "transferred")
# event -> the `custody add` options (their details names) it takes.
_ADD_FIELDS: dict[str, tuple[str, ...]] = {
    "note": ("text",),
    "verified": ("text",),
    "examined": ("purpose", "tools", "location", "result", "authority"),
    "copied": ("destination", "method", "purpose", "copy_sha256", "verified", "authority"),
    "stored": ("location", "seal", "retain_until"),
    "labelled": ("exhibit",),
    "disposed": ("disposition", "to", "method", "witness", "authority"),
    "transferred": (
        "to",
        "to_key",
        "to_contact",
        "method",
        "tracking",
        "storage_location",
        "seal",
        "purpose",
        "authority",
    ),
}


def chain_rows(
    bundle: Path, extra_trust: set[str] | None = None
) -> tuple[list[dict[str, Any]], list[str], str]:
    """Each line with whether its link and signature hold, findings not tied to a line, and the
    receipt summary ("custody after seal: ..."). Transfers carry `accepted_at` / `open`."""
    if not (bundle / "custody").is_dir():
        raise NotABundleError(f"{bundle} has no custody/ directory", "give a sealbox bundle directory")
    findings, lines = verify_chain(bundle)
    store = KeyStore.default()
    trusted = store.trusted_fingerprints() | {k.identity.fingerprint for k in store.own_keys()}
    trusted |= extra_trust or set()
    sealed = next((ln.event for ln in lines if ln.event and ln.event["event"] == "sealed"), None)
    anchors, summary = check_custody_anchors(
        bundle, str((sealed or {}).get("bundle", "")), lines, store, trusted
    )
    findings += anchors
    found, transfer_findings = check_transfers(lines)
    findings += transfer_findings
    by_transfer = {t.line.where: t for t in found}
    by_where: dict[str, list[str]] = {}
    for f in findings:
        by_where.setdefault(f.where, []).append(f.line())
    rows = []
    for line in lines:
        ev = line.event or {}
        actor_value = ev.get("actor")
        actor: dict[str, Any] = actor_value if isinstance(actor_value, dict) else {}
        problems = by_where.pop(line.where, [])
        row: dict[str, Any] = {
            "line": line.where,
            "seq": ev.get("seq"),
            "time": ev.get("time"),
            "event": ev.get("event"),
            "actor": {k: actor.get(k) for k in ("name", "role", "organization", "key", "contact")},
            "actor_trusted": actor.get("key") in trusted,
            "reason": ev.get("reason"),
            "details": ev.get("details"),
            "holds": not problems,
            "problems": problems,
        }
        transfer = by_transfer.get(line.where)
        if transfer is not None:
            row["open"] = transfer.open
            row["accepted_at"] = (transfer.accepted.event or {}).get("seq") if transfer.accepted else None
        rows.append(row)
    rest = [msg for msgs in by_where.values() for msg in msgs]
    return rows, rest, summary


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items() if v not in (None, "", []))
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def exhibit_text(exhibit: dict[str, Any]) -> str:
    number, description = exhibit.get("number") or "(no number)", exhibit.get("description")
    return f"{number} ({description})" if description else str(number)


# The §4.2 fields shown under an event, in this order, with their labels.
_SHOWN = (
    ("to", "to"),
    ("to_key", "receiver key"),
    ("to_contact", "receiver contact"),
    ("transfer_seq", "accepts transfer"),
    ("method", "method"),
    ("tracking", "tracking number"),
    ("seal", "seal number"),
    ("seal_intact", "seal intact"),
    ("storage_location", "storage location"),
    ("location", "location"),
    ("vault", "vault"),
    ("retain_until", "retain until"),
    ("purpose", "purpose"),
    ("tools", "tools"),
    ("result", "result"),
    ("destination", "destination"),
    ("copy_sha256", "copy SHA-256"),
    ("condition", "condition"),
    ("disposition", "disposition"),
    ("witness", "witness"),
    ("exhibit", "exhibit"),
    ("device", "device"),
    ("authority", "legal authority"),
    ("package", "package"),
    ("recipient", "recipient"),
    ("exporter", "exporter"),
)


def detail_lines(row: dict[str, Any]) -> list[str]:
    """What a person reads under one event: its court fields, and a note's whole text."""
    details = row["details"] if isinstance(row.get("details"), dict) else {}
    out = []
    for name, label in _SHOWN:
        value = details.get(name)
        if name == "exhibit" and isinstance(value, dict):
            value = exhibit_text(value)
        if name == "device" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "read_from"}
        if value not in (None, "", [], {}):
            out.append(f"{label}: {_text(value)}")
    if isinstance(details.get("text"), str) and details["text"]:
        out.extend(f"note: {part}" for part in details["text"].splitlines() or [""])
    update = details.get("incident_update")
    if isinstance(update, dict):
        out.extend(f"incident {k}: {_text(v)}" for k, v in update.items())
    for step in details.get("next_steps") or []:
        if isinstance(step, dict):
            mark = "[done] " if step.get("done") else ""
            out.append(f"next step: {mark}{step.get('title', '')}: {step.get('detail', '')}")
    if row.get("event") == "transferred" and "open" in row:
        out.append(
            "OPEN: not yet accepted by the receiver"
            if row["open"]
            else f"accepted by the receiver at seq {row['accepted_at']}"
        )
    return out


@click.group()
def custody() -> None:
    """Show or extend a bundle's chain of custody."""


@custody.command()
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False), required=False)
@click.option("--case", "case", metavar="ID", help="Show the case ledger (containment before any bundle).")
@click.option("--trust", multiple=True, metavar="FP", help="Also trust this key fingerprint (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(bundle: Path | None, case: str | None, trust: tuple[str, ...], as_json: bool) -> int:
    """Show every custody event of BUNDLE (or of a case ledger), what it records, and whether each
    link and signature holds; transfers not yet accepted are marked OPEN."""
    if (bundle is None) == (case is None):
        raise UsageError("give either a BUNDLE or --case ID")
    if bundle is None:
        bundle = ledger.case_dir(str(case))
        if not bundle.is_dir():
            raise UsageError(f"case {case!r} has no ledger at {bundle}", "check the case id and SEALBOX_HOME")
    from agent.commands.verify import full_fingerprints  # verify's imports: only this command's

    rows, rest, summary = chain_rows(bundle, full_fingerprints(trust))
    ok = all(r["holds"] for r in rows) and not rest
    open_rows = [r for r in rows if r.get("open")]
    _, lines = verify_chain(bundle)
    exhibit = current_exhibit(lines)
    if as_json:
        print_json(
            {
                "bundle": str(bundle),
                "holds": ok,
                "events": rows,
                "problems": rest,
                "anchor": summary,
                "open_transfers": [r["seq"] for r in open_rows],
                "exhibit": exhibit,
            }
        )
        return 0 if ok else 1
    if exhibit:
        click.echo(f"exhibit: {exhibit_text(exhibit)}")
    for r in rows:
        a = r["actor"]
        mark = "ok " if r["holds"] else "BAD"
        trusted = "trusted" if r["actor_trusted"] else "untrusted"
        contact = f" <{a['contact']}>" if a.get("contact") else ""
        click.echo(
            f"{mark} {r['seq']!s:>3}  {str(r['time'] or '')[:23]}  {r['event'] or '?':<20} "
            f"{a['name']} ({a['role']}, {a['organization']}){contact} {a['key']} [{trusted}]"
        )
        if r["reason"]:
            click.echo(f"          reason: {r['reason']}")
        for text in detail_lines(r):
            click.echo(f"          {text}")
        for problem in r["problems"]:
            click.echo(f"          FAIL {problem}")
    for problem in rest:
        click.echo(f"FAIL {problem}")
    click.echo(summary)
    if open_rows:
        named = ", ".join(f"seq {r['seq']} to {(r['details'] or {}).get('to')}" for r in open_rows)
        click.echo(f"open transfers (not yet accepted): {named}")
    else:
        click.echo("open transfers: none")
    click.echo(
        f"chain {'holds' if ok else 'is BROKEN'}: {len(rows)} event(s) in {bundle}",
        err=not ok,
    )
    return 0 if ok else 1


def authority_options(func: Any) -> Any:
    """The legal authority (SPEC §4.2 `authority`) as four flags."""
    for name, help_text in reversed(
        (
            ("basis", "Legal basis: search warrant, consent, court order, subpoena, policy, ..."),
            ("reference", "Warrant, order or file number."),
            ("issued-by", "Court, judge or officer who issued it."),
            ("date", "When it was issued."),
        )
    ):
        func = click.option(f"--authority-{name}", f"authority_{name.replace('-', '_')}", help=help_text)(
            func
        )
    return func


def _authority(kw: dict[str, Any]) -> dict[str, str]:
    return authority_from(
        {k: kw.pop(f"authority_{k}", None) for k in ("basis", "reference", "issued_by", "date")}
    )


def full_fingerprint(value: str, flag: str) -> str:
    hexpart = normalize_fp(value)
    if len(hexpart) != 64:
        raise UsageError(
            f"{flag} '{value}' is not a full fingerprint", "give all 64 hex digits: SHA256:<hex>"
        )
    return FP_PREFIX + hexpart


def _append(
    bundle: Path,
    key_ref: str | None,
    passphrase_file: Path | None,
    event: str,
    details: dict[str, Any],
    reason: str,
) -> dict[str, Any]:
    signer = load_signer(key_ref, passphrase_file)
    done = append_event_with_receipt(bundle, signer, event, details, reason)
    click.echo(f"appended custody event {done.event['seq']} ({event}) signed by {signer.fingerprint}")
    click.echo(f"receipt: {done.receipt}")
    witness(bundle, done.event)
    return done.event


def _clean(details: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in details.items() if v not in (None, "", (), [], {})}


@custody.command()
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False))
@click.option("--event", "event", required=True, type=click.Choice(ADDABLE), help="What happened.")
@click.option("--reason", required=True, help="Why, in words a court can read.")
@click.option("--text", help="note / verified: the text of the note.")
@click.option("--purpose", help="examined / copied / transferred: what for.")
@click.option("--tool", "tools", multiple=True, help="examined: a tool used (repeatable).")
@click.option("--location", help="examined / stored: where.")
@click.option("--result", help="examined: what was found, in a sentence.")
@click.option("--destination", help="copied: where the copy went.")
@click.option("--method", help="copied / disposed / transferred: how.")
@click.option("--copy-sha256", help="copied: SHA-256 of the copy's tagmanifest-sha256.txt.")
@click.option(
    "--copy-verified", "verified", is_flag=True, default=None, help="copied: the copy was verified."
)
@click.option("--seal", help="stored / transferred: seal or evidence-bag number.")
@click.option("--retain-until", help="stored: keep until this date.")
@click.option("--exhibit", help="labelled: exhibit number.")
@click.option("--exhibit-description", help="labelled: what the exhibit is.")
@click.option("--disposition", type=click.Choice(DISPOSITIONS), help="disposed: what became of it.")
@click.option("--to", "to", help="transferred / disposed (returned): to whom (name, organization).")
@click.option("--witness", "witness_name", help="disposed: a witness.")
@authority_options
@key_options
def add(
    bundle: Path, event: str, reason: str, key_ref: str | None, passphrase_file: Path | None, **kw: Any
) -> None:
    """Append one signed event to BUNDLE's custody/continuation.jsonl."""
    if not reason.strip():
        raise UsageError("--reason must not be empty", "say why this event is recorded")
    authority = _authority(kw)
    exhibit = _clean({"number": kw.pop("exhibit"), "description": kw.pop("exhibit_description")})
    given = _clean(
        {
            **{("witness" if k == "witness_name" else k): v for k, v in kw.items()},
            "tools": list(kw["tools"]),
            "authority": authority,
            "exhibit": exhibit,
        }
    )
    allowed = _ADD_FIELDS[event]
    wrong = sorted(k for k in given if k not in allowed)
    if wrong:
        flags = ", ".join("--" + k.replace("_", "-") for k in wrong)
        raise UsageError(
            f"'{event}' takes no {flags}", f"'{event}' records: {', '.join(allowed) or 'a reason'}"
        )
    if event == "transferred" and not given.get("to"):
        raise UsageError("a 'transferred' event needs --to NAME", 'e.g. --to "Det. J. Doe, City PD"')
    if event == "labelled" and "number" not in exhibit:
        raise UsageError("a 'labelled' event needs --exhibit NUMBER")
    if event == "disposed" and not given.get("disposition"):
        raise UsageError("a 'disposed' event needs --disposition", f"one of: {', '.join(DISPOSITIONS)}")
    _append(bundle, key_ref, passphrase_file, event, given, reason)


@custody.command()
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False))
@click.option("--to", "to", required=True, help='The receiver in words, e.g. "Det. J. Doe, City PD".')
@click.option(
    "--to-key", required=True, metavar="FP", help="The receiver's key fingerprint: only it can accept."
)
@click.option("--to-contact", help="The receiver's phone or e-mail.")
@click.option("--method", help="in-person, courier, mail, network, ...")
@click.option("--tracking", help="Tracking number (courier, mail).")
@click.option("--storage-location", help="Where the evidence goes or is kept.")
@click.option("--seal", help="Seal or evidence-bag number.")
@click.option("--purpose", help="What the receiver is to do with it.")
@click.option("--reason", required=True, help="Why, in words a court can read.")
@authority_options
@key_options
def transfer(
    bundle: Path,
    to: str,
    to_key: str,
    reason: str,
    key_ref: str | None,
    passphrase_file: Path | None,
    **kw: Any,
) -> None:
    """Record that you hand BUNDLE to someone: a `transferred` event that stays open until the
    receiver countersigns it with `sealbox custody accept`."""
    if not reason.strip():
        raise UsageError("--reason must not be empty", "say why the evidence changes hands")
    authority = _authority(kw)
    details = _clean({"to": to, "to_key": full_fingerprint(to_key, "--to-key"), **kw, "authority": authority})
    ev = _append(bundle, key_ref, passphrase_file, "transferred", details, reason)
    click.echo(
        f"transfer {ev['seq']} is open until the receiver runs "
        f"`sealbox custody accept {bundle} --transfer {ev['seq']}`"
    )


@custody.command()
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False))
@click.option("--transfer", "transfer_seq", required=True, type=click.IntRange(1), help="The transfer's seq.")
@click.option("--seal", help="The seal number you found.")
@click.option("--seal-intact/--seal-broken", default=None, help="Whether the seal was intact.")
@click.option("--storage-location", help="Where you keep the evidence now.")
@click.option("--condition", help="The evidence's condition on receipt.")
@click.option("--reason", default="", help="Why, in words a court can read (default: accepted transfer N).")
@key_options
def accept(
    bundle: Path, transfer_seq: int, reason: str, key_ref: str | None, passphrase_file: Path | None, **kw: Any
) -> None:
    """Countersign transfer SEQ of BUNDLE as its receiver (SPEC §4.2 `accepted`): refused unless
    your key is the one the transfer names."""
    extra = {k: v for k, v in kw.items() if v is not None}
    signer = load_signer(key_ref, passphrase_file)
    done = append_event_with_receipt(
        bundle,
        signer,
        "accepted",
        lambda lines: accept_details(lines, transfer_seq, signer.fingerprint, extra),
        reason or f"accepted transfer {transfer_seq}",
    )
    click.echo(f"appended custody event {done.event['seq']} (accepted) signed by {signer.fingerprint}")
    click.echo(f"transfer {transfer_seq} is complete")
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
