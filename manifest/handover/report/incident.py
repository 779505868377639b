"""The incident report as it stands now: metadata/incident.json (sealed with the bundle) with every
later `incident-note` addition from the custody log applied in order, each answer with its source."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.handover.report.chain import Chain, Entry

INCIDENT = "metadata/incident.json"
# Written by sealbox itself, never shown as answers.
BOOKKEEPING = ("format", "case", "recorded_at", "missing", "provided_by")
PARTIES = {
    "it": "City IT",
    "police": "Police",
    "supervisor": "Supervisor",
    "records_custodian": "Records custodian",
}


@dataclass
class Incident:
    """`data` has incident.json's shape; `sources[path]` says where each answer came from."""

    data: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    additions: list[Entry] = field(default_factory=list)  # the notes that changed or added to it
    problem: str = ""  # why incident.json could not be read
    present: bool = True

    def get(self, dotted: str) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict):
                return None
            node = node.get(part)
        return node

    def missing(self) -> list[str]:
        """Fields the sealed report listed as unanswered and that no later note answered."""
        listed = self.data.get("missing")
        return (
            [p for p in listed if isinstance(p, str) and self.get(p) in (None, "", [])]
            if isinstance(listed, list)
            else []
        )


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    node = doc
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


def read_incident(bundle_dir: Path, chain: Chain) -> Incident:
    path = bundle_dir / INCIDENT
    data: dict[str, Any] = {}
    out = Incident(data)
    if path.is_file():
        try:
            loaded = json.loads(path.read_bytes())
        except ValueError:
            loaded = None
            out.problem = f"{INCIDENT} is not valid JSON"
        if isinstance(loaded, dict):
            out.data = copy.deepcopy(loaded)
            given = loaded.get("provided_by")
            when = str(loaded.get("recorded_at") or "")[:19].replace("T", " ")
            for dotted in given if isinstance(given, dict) else {}:
                out.sources[dotted] = f"sealed report ({when} UTC)" if when else "sealed report"
        elif not out.problem:
            out.problem = f"{INCIDENT} does not hold an object"
    else:
        out.present = False
    for entry in chain.entries:
        update = entry.details.get("incident_update")
        if entry.kind != "note" or not (isinstance(update, dict) or entry.details.get("text")):
            continue
        if not isinstance(update, dict) and entry.reason != "incident report addition":
            continue
        out.additions.append(entry)
        for dotted, value in (update or {}).items():
            _set(out.data, str(dotted), value)
            who = entry.actor.get("name") or "unknown"
            out.sources[str(dotted)] = (
                f"custody event {entry.seq} by {who}, {entry.time[:19].replace('T', ' ')} UTC"
            )
    return out


def as_next_steps_input(incident: Incident) -> dict[str, Any] | None:
    """The merged report in incident.json's shape, for next_steps() (None when there is none)."""
    return incident.data if (incident.present or incident.additions) else None
