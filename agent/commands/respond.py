"""`sealbox respond`: the guided IT flow, and `sealbox incident-note` for what is learned later.

volatile state -> profile collection -> seal -> verify -> next steps (printed and recorded).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from agent.commands.artifacts import artifacts_dir_option
from agent.commands.collect import (
    parse_since,
    parse_size,
    run_with_progress,
    summary,
    warn,
)
from agent.commands.common import key_options, load_signer, print_json, run_options, stderr_is_tty, witness
from agent.isolation.config import standing_channel
from collectors import incident as incident_mod
from collectors.artifacts import Catalog
from collectors.respond import build_request, capture_first
from manifest.bundle import check_case_id
from manifest.errors import KeyError_, UsageError
from manifest.handover.next_steps import next_steps, render
from manifest.signing.custody import append_event, append_event_with_receipt
from manifest.signing.keys import KeyStore, Signer
from manifest.vault.push import push_or_defer
from manifest.verify import verify_bundle

DEMO_KEY_NAME = "DEMO KEY - not for evidence"
NO_KEY_HINT = (
    "make your own signing key first: `sealbox keys generate --name 'Your Name' --role 'IT responder' "
    "--org 'City IT'`, or try sealbox with `--demo-key` (a key clearly labeled as not for evidence)"
)


def incident_options(func: Any) -> Any:
    """The incident report's flags; all optional, file values are overridden by flags."""
    options = [
        click.option(
            "--incident",
            "incident_file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Incident report as TOML or JSON (see docs: reporter, discovery, ...).",
        ),
        click.option("--reporter", help="Your name (incident report)."),
        click.option("--reporter-role", help="Your role."),
        click.option("--reporter-department", help="Your department."),
        click.option("--reporter-contact", help="Phone or e-mail."),
        click.option("--discovered-at", help="When the breach was discovered."),
        click.option("--discovered-how", help="How it was discovered."),
        click.option("--observed", help="What was observed."),
        click.option(
            "--affected-system", "affected_systems", multiple=True, help="Affected system (repeatable)."
        ),
        click.option(
            "--affected-account", "affected_accounts", multiple=True, help="Affected account (repeatable)."
        ),
        click.option(
            "--crime-suspected/--no-crime-suspected", default=None, help="Whether a crime is suspected."
        ),
        click.option(
            "--notified",
            multiple=True,
            metavar="PARTY[=WHEN]",
            help="Already notified: it, police, supervisor, records-custodian (repeatable).",
        ),
        click.option(
            "--authority-basis", help="Legal basis: search warrant, consent, court order, policy, ..."
        ),
        click.option("--authority-reference", help="Warrant, order or policy number."),
        click.option("--authority-issued-by", help="Who issued it (court, judge, department)."),
        click.option("--authority-date", help="When it was issued."),
        click.option(
            "--answer",
            "answers",
            multiple=True,
            metavar="FIELD=VALUE",
            help="Answer any incident question by its field, e.g. notifications.police.who=Det. Doe "
            "(repeatable; see README).",
        ),
        click.option("--no-prompt", is_flag=True, help="Never ask questions, even on a terminal."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _gather_incident(kw: dict[str, Any], case: str, interactive: bool) -> dict[str, Any] | None:
    report = incident_mod.IncidentReport()
    if kw["incident_file"] is not None:
        incident_mod.load_file(kw["incident_file"], report)
    incident_mod.apply_flags(
        report,
        {
            "reporter.name": kw["reporter"],
            "reporter.role": kw["reporter_role"],
            "reporter.department": kw["reporter_department"],
            "reporter.contact": kw["reporter_contact"],
            "discovery.when": kw["discovered_at"],
            "discovery.how": kw["discovered_how"],
            "observed": kw["observed"],
            "affected.systems": list(kw["affected_systems"]),
            "affected.accounts": list(kw["affected_accounts"]),
            "crime_suspected": kw["crime_suspected"],
            "notified": kw["notified"],
            "legal_authority.basis": kw["authority_basis"],
            "legal_authority.reference": kw["authority_reference"],
            "legal_authority.issued_by": kw["authority_issued_by"],
            "legal_authority.date": kw["authority_date"],
        },
    )
    incident_mod.apply_answers(report, kw["answers"])
    if interactive and report.missing():
        click.echo("Incident report (press Enter to skip a question):", err=True)
        incident_mod.prompt_missing(
            report, lambda f: click.prompt(f"  {f.prompt}", default="", show_default=False, err=True)
        )
    return report.to_dict(case)


def _signer(key_ref: str | None, passphrase_file: Path | None, demo_key: bool) -> tuple[Signer, bool]:
    """The responder's key; with --demo-key a clearly labeled demo key (made once, then reused)."""
    store = KeyStore.default()
    if demo_key and key_ref is None:
        for stored in store.own_keys():
            if stored.identity.name == DEMO_KEY_NAME:
                return store.load_signer(stored.identity.fingerprint), True
        made = store.generate(DEMO_KEY_NAME, "demo - not for evidence", "sealbox demo")
        click.echo(f"created {DEMO_KEY_NAME}: {made.identity.fingerprint}", err=True)
        return store.load_signer(made.identity.fingerprint), True
    try:
        return load_signer(key_ref, passphrase_file), False
    except KeyError_ as exc:
        if key_ref is None and not store.own_keys():
            raise KeyError_(f"no signing key in {store.home}", NO_KEY_HINT) from exc
        raise


@click.command()
@click.option("--case", required=True, help="Case id, e.g. OKC-2026-0042.")
@click.option("--profile", help="Profile to collect (default: <os>-default for the target).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=".",
    show_default=True,
    help="Where the bundle directory is created (external media is best).",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Collect from a mounted image or another root tree instead of this system.",
)
@click.option("--since", metavar="DATE", help="Record files modified before DATE as skipped.")
@click.option("--max-file-size", metavar="N", help="Record files larger than N (e.g. 500M) as skipped.")
@artifacts_dir_option
@click.option(
    "--volatile/--no-volatile",
    "with_volatile",
    default=None,
    help="Capture this host's volatile state (default: only when collecting the live system).",
)
@key_options
@click.option("--demo-key", is_flag=True, help=f"Sign with a generated '{DEMO_KEY_NAME}'.")
@click.option("--exhibit", help="Exhibit / item number of this evidence (custody record).")
@click.option("--exhibit-description", help="What the exhibit is, e.g. 'Dell laptop, finance office'.")
@click.option("--asset-tag", help="The device's asset tag (from its sticker), if the firmware has none.")
@click.option("--serial", help="The device's serial number, if the firmware does not give it.")
@incident_options
@run_options
@click.option("--dry-run", is_flag=True, help="Show what would be collected, collect nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("--vault", "vault_url", metavar="s3://BUCKET", help="Then store the bundle in this vault.")
def respond(
    case: str,
    profile: str | None,
    out_dir: Path,
    root: Path | None,
    since: str | None,
    max_file_size: str | None,
    artifacts_dirs: tuple[Path, ...],
    with_volatile: bool | None,
    key_ref: str | None,
    passphrase_file: Path | None,
    demo_key: bool,
    exhibit: str | None,
    exhibit_description: str | None,
    asset_tag: str | None,
    serial: str | None,
    reason: str,
    workers: int | None,
    resume: Path | None,
    previous: Path | None,
    dry_run: bool,
    as_json: bool,
    vault_url: str | None,
    **incident_kw: Any,
) -> int:
    """Preserve a breached machine's evidence in one go: volatile state, logs, mail, files -> a
    sealed, verified bundle, then the next steps from the city guide."""
    check_case_id(case)  # before any question is asked or anything is read
    catalog = Catalog.load(artifacts_dirs)
    if dry_run:
        # Planning needs no key: a throwaway identity is never used to sign anything.
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from manifest.signing.keys import Identity

        signer = Signer(Identity("dry-run", "", "", ""), Ed25519PrivateKey.generate())
        is_demo = False
    else:
        signer, is_demo = _signer(key_ref, passphrase_file, demo_key)
    interactive = sys.stdin.isatty() and sys.stderr.isatty() and not incident_kw["no_prompt"] and not dry_run
    prepared = build_request(
        catalog,
        case=case,
        out_dir=out_dir,
        signer=signer,
        profile=profile,
        root=root,
        since_ns=parse_since(since),
        max_file_size=parse_size(max_file_size),
        with_volatile=with_volatile,
        incident=None,
        reason=reason or "sealbox respond",
        workers=workers,
        resume=resume,
        previous=previous,
        private_mounts=True,
    )
    if dry_run:
        _gather_incident(incident_kw, case, False)  # a bad incident file or flag fails the plan too
        print_json(prepared.describe())
        return 0
    if prepared.volatile_sections:
        # RFC 3227: the volatile state first; nothing waits for typing before it is taken.
        if interactive:
            click.echo("Capturing volatile state first (processes, connections, ...)", err=True)
        capture_first(prepared)
    incident = _gather_incident(incident_kw, case, interactive)
    prepared.request.incident = incident
    prepared.request.started = {
        "exhibit": {k: v for k, v in (("number", exhibit), ("description", exhibit_description)) if v},
        "authority": incident_mod.authority_of(incident),
        "device": {k: v for k, v in (("asset_tag", asset_tag), ("serial", serial)) if v},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    if is_demo:
        click.echo(f"WARNING: signing with the {DEMO_KEY_NAME}; make your own key for real cases", err=True)
    result = run_with_progress(prepared.request, stderr_is_tty() and not as_json)
    warn(result)
    report = verify_bundle(result.bundle, {signer.fingerprint})
    steps = next_steps(
        result.bundle,
        case,
        incident,
        report.ok,
        standing_channel(),
        key=signer.fingerprint,
        live=prepared.target.live,
    )
    append_event(
        result.bundle,
        signer,
        "note",
        {
            "next_steps": [s.as_dict() for s in steps],
            "verification": {"ok": report.ok, "findings": [f.as_dict() for f in report.findings]},
            "demo_key": is_demo,
        },
        "next steps given to the responder after sealing (sealbox respond)",
    )
    if as_json:
        print_json(
            {
                **summary(result),
                "profile": prepared.selection.profile.name,
                "verified": report.ok,
                "findings": [f.as_dict() for f in report.findings],
                "next_steps": [s.as_dict() for s in steps],
                "demo_key": is_demo,
            }
        )
    else:
        s = result.stats
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(s.by_status.items()))
        click.echo(str(result.bundle))
        click.echo(f"sealed: {s.items} items ({statuses}); {s.files} files, {s.bytes} bytes copied", err=True)
        for finding in report.findings:
            click.echo(f"FAIL {finding.line()}", err=True)
        click.echo(("VERIFIED" if report.ok else "NOT VERIFIED") + f" {result.bundle}", err=True)
        click.echo(render(steps))
    if vault_url and report.ok:
        click.echo(push_or_defer(result.bundle, vault_url, signer)[1], err=True)
    return 0 if report.ok else 1


@click.command("incident-note")
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--text", default="", help="Free text to add.")
@incident_options
@key_options
def incident_note(
    bundle: Path, text: str, key_ref: str | None, passphrase_file: Path | None, **incident_kw: Any
) -> None:
    """Add to a sealed bundle's incident report: a signed `note` in its custody continuation."""
    incident_kw["no_prompt"] = True
    update = _gather_incident(incident_kw, "", False) or {}
    given = list(update.get("provided_by", {}))
    if not given and not text:
        raise UsageError("nothing to add", "give --text, incident flags, or --incident FILE")
    signer = load_signer(key_ref, passphrase_file)
    values = {k: _lookup(update, k) for k in given}
    done = append_event_with_receipt(
        bundle, signer, "note", {"incident_update": values, "text": text}, "incident report addition"
    )
    click.echo(f"recorded custody event {done.event['seq']} in {bundle}")
    click.echo(f"receipt: {done.receipt}")
    witness(bundle, done.event)


def _lookup(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        node = node[part]
    return node


COMMANDS = [respond, incident_note]
