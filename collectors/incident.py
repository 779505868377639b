"""The incident report that travels with the evidence (`metadata/incident.json`).

The city has no standard breach form: the report is what the responder writes down. It comes
from a `--incident FILE` (TOML or JSON, the same shape as the output), from flags (which win),
and on a terminal from prompts for what is still missing. Nothing is required: a field nobody
gave is null and listed in `missing`, so a non-interactive run never stops to ask.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from manifest.errors import UsageError
from manifest.format.timefmt import now_rfc3339

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

FORMAT = "sealbox-incident/1"
PARTIES = ("it", "police", "supervisor", "records_custodian")
PARTY_LABELS = {
    "it": "city IT",
    "police": "the police",
    "supervisor": "your supervisor",
    "records_custodian": "the records custodian",
}


@dataclass(frozen=True)
class Field:
    """One answerable field: its dotted path, type (`text`, `list`, `bool`) and prompt."""

    path: str
    type: str
    prompt: str


FIELDS: tuple[Field, ...] = (
    Field("reporter.name", "text", "Your name"),
    Field("reporter.role", "text", "Your role (e.g. IT technician)"),
    Field("reporter.department", "text", "Your department"),
    Field("reporter.contact", "text", "How to reach you (phone or e-mail)"),
    Field("discovery.when", "text", "When was the breach discovered (date and time)"),
    Field("discovery.how", "text", "How was it discovered"),
    Field("observed", "text", "What did you observe"),
    Field("affected.systems", "list", "Affected systems (comma-separated)"),
    Field("affected.accounts", "list", "Affected accounts (comma-separated)"),
    Field("crime_suspected", "bool", "Is a crime suspected"),
    Field(
        "legal_authority.basis",
        "text",
        "Legal basis for collecting (search warrant, consent, court order, policy, ...)",
    ),
    Field("legal_authority.reference", "text", "Warrant, order or policy number"),
    Field("legal_authority.issued_by", "text", "Issued by (court, judge, officer, department)"),
    Field("legal_authority.date", "text", "Date it was issued"),
    *(
        f
        for party in PARTIES
        for f in (
            Field(f"notifications.{party}.notified", "bool", f"Has {PARTY_LABELS[party]} been notified"),
            Field(f"notifications.{party}.when", "text", f"When was {PARTY_LABELS[party]} notified"),
            Field(f"notifications.{party}.who", "text", f"Who at {PARTY_LABELS[party]} (name or reference)"),
        )
    ),
)
_BY_PATH = {f.path: f for f in FIELDS}


@dataclass
class IncidentReport:
    """Answers by dotted field path; `sources` says where each answer came from."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def set(self, path: str, value: Any, source: str) -> None:
        if value is None or value == "" or value == []:
            return
        self.values[path] = _coerce(_BY_PATH[path], value, source)
        self.sources[path] = source

    def missing(self) -> list[str]:
        return [f.path for f in FIELDS if f.path not in self.values and self._relevant(f.path)]

    def _relevant(self, path: str) -> bool:
        # "when"/"who" of a party only matter once that party is known to have been notified.
        parts = path.split(".")
        if parts[0] == "notifications" and parts[2] != "notified":
            return self.values.get(f"notifications.{parts[1]}.notified") is True
        return True

    def to_dict(self, case: str | None = None) -> dict[str, Any]:
        """The JSON document written as metadata/incident.json."""
        out: dict[str, Any] = {"format": FORMAT, "case": case, "recorded_at": now_rfc3339()}
        for f in FIELDS:
            node = out
            *parents, leaf = f.path.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = self.values.get(f.path, [] if f.type == "list" else None)
        out["missing"] = self.missing()
        out["provided_by"] = dict(sorted(self.sources.items()))
        return out


def _coerce(f: Field, value: Any, source: str) -> Any:
    if f.type == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("y", "yes", "true", "1", "ja"):
            return True
        if text in ("n", "no", "false", "0", "nein"):
            return False
        raise UsageError(f"{source}: field '{f.path}': '{value}' is not yes or no")
    if f.type == "list":
        items = value if isinstance(value, list) else str(value).split(",")
        if not all(isinstance(v, str) for v in items):
            raise UsageError(f"{source}: field '{f.path}': must be a list of strings")
        return [v.strip() for v in items if v.strip()]
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise UsageError(f"{source}: field '{f.path}': must be text")
    return str(value).strip()


def _flatten(data: dict[str, Any], prefix: str, source: str, out: dict[str, Any]) -> None:
    for key, value in data.items():
        path = f"{prefix}{key}"
        if path in _BY_PATH:
            out[path] = value
        elif isinstance(value, dict) and any(p.startswith(path + ".") for p in _BY_PATH):
            _flatten(value, path + ".", source, out)
        elif path in ("format", "case", "recorded_at", "missing", "provided_by"):
            continue  # written by sealbox itself: a previous incident.json can be fed back in
        else:
            raise UsageError(
                f"{source}: unknown field '{path}'",
                "known fields: " + ", ".join(f.path for f in FIELDS),
            )


def load_file(path: Path, report: IncidentReport | None = None) -> IncidentReport:
    """An incident file in TOML or JSON (by extension; JSON when it starts with '{')."""
    report = report or IncidentReport()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read incident file {path}: {exc.strerror}") from exc
    try:
        if path.suffix.lower() == ".json" or raw.lstrip().startswith(b"{"):
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"incident file {path} is not valid TOML or JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"incident file {path} must hold a table/object at the top")
    flat: dict[str, Any] = {}
    _flatten(data, "", str(path), flat)
    for key, value in flat.items():
        report.set(key, value, f"file:{path.name}")
    return report


def apply_flags(report: IncidentReport, flags: dict[str, Any]) -> IncidentReport:
    """Flag values by field path (None = not given); `notified` is a list of PARTY[=WHEN]."""
    for path, value in flags.items():
        if path == "notified":
            for entry in value or ():
                party, _, when = entry.partition("=")
                party = party.strip().lower().replace("-", "_")
                if party not in PARTIES:
                    raise UsageError(
                        f"--notified '{entry}': unknown party '{party}'", f"use one of: {', '.join(PARTIES)}"
                    )
                report.set(f"notifications.{party}.notified", True, "flag")
                report.set(f"notifications.{party}.when", when or None, "flag")
            continue
        report.set(path, value, "flag")
    return report


def apply_answers(report: IncidentReport, answers: tuple[str, ...] | list[str]) -> IncidentReport:
    """`--answer FIELD=VALUE` flags: any field by its dotted path (see FIELDS)."""
    for entry in answers:
        path, sep, value = entry.partition("=")
        path = path.strip()
        if not sep or path not in _BY_PATH:
            raise UsageError(
                f"--answer '{entry}': not FIELD=VALUE with a known FIELD",
                "known fields: " + ", ".join(f.path for f in FIELDS),
            )
        report.set(path, value, "flag")
    return report


def authority_of(incident: dict[str, Any] | None) -> dict[str, str]:
    """The incident's legal authority as a custody `authority` object (SPEC §4.2)."""
    given = (incident or {}).get("legal_authority") or {}
    return {k: str(v) for k, v in given.items() if isinstance(v, str) and v}


def prompt_missing(report: IncidentReport, ask: Callable[[Field], str]) -> IncidentReport:
    """Ask for each missing field in order; an empty answer leaves it missing."""
    for f in FIELDS:
        if f.path in report.values or not report._relevant(f.path):
            continue
        answer = ask(f).strip()
        if answer:
            report.set(f.path, answer, "prompt")
    return report
