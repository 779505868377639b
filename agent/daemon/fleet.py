"""The fleet as the vault sees it: one row per host from its signed heartbeat and last status."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from agent.daemon.statusdoc import MAX_BYTES, check_status
from manifest.format.timefmt import now_ns, parse_rfc3339_ns

if TYPE_CHECKING:
    from manifest.vault.location import VaultLocation

STALE_INTERVALS = 3  # a heartbeat older than this many intervals marks the host stale


@dataclass(frozen=True)
class HostRow:
    host: str
    heartbeat: str | None
    stale: bool
    isolation: str
    last_order: str | None
    last_action: str | None
    last_result: str | None
    last_bundle: str | None
    bundle_verified: bool | None
    bundle_stored: bool | None
    agent_key: str | None
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read(client: Any, location: VaultLocation, key: str) -> tuple[dict[str, Any] | None, str]:
    from manifest.vault.errors import VaultError
    from manifest.vault.orders import get_document

    try:
        data = get_document(client, location, key, MAX_BYTES)
    except VaultError as exc:
        return None, exc.message
    doc, problem = check_status(data)
    return (doc if not problem else None), problem


def host_row(client: Any, location: VaultLocation, host: str, now: int | None = None) -> HostRow:
    from manifest.vault.orders import heartbeat_key, status_key

    beat, problem = _read(client, location, heartbeat_key(location, host))
    if beat is None:
        return HostRow(host, None, True, "unknown", None, None, None, None, None, None, None, problem)
    details = beat.get("details") or {}
    interval = float(details.get("interval") or 30)
    age = (now or now_ns()) - parse_rfc3339_ns(str(beat["time"]))
    last = details.get("last_order") or {}
    result: dict[str, Any] = {}
    if last.get("id"):
        doc, _ = _read(client, location, status_key(location, host, str(last["id"])))
        result = doc or {}
    bundle = details.get("last_bundle") or {}
    return HostRow(
        host=host,
        heartbeat=str(beat["time"]),
        stale=age > STALE_INTERVALS * interval * 1e9,
        isolation=str((details.get("isolation") or {}).get("status", "unknown")),
        last_order=last.get("id"),
        last_action=last.get("action"),
        last_result=result.get("result") or last.get("phase"),
        last_bundle=bundle.get("bundle"),
        bundle_verified=bundle.get("verified"),
        bundle_stored=bundle.get("stored"),
        agent_key=(beat.get("agent") or {}).get("key"),
    )


def fleet_rows(client: Any, location: VaultLocation) -> list[HostRow]:
    from manifest.vault.orders import list_children, status_prefix

    now = now_ns()
    return [
        host_row(client, location, h, now)
        for h in sorted(list_children(client, location, status_prefix(location)))
    ]


def render(rows: list[HostRow]) -> str:
    head = ("HOST", "HEARTBEAT", "ISOLATION", "LAST ORDER", "RESULT", "LAST BUNDLE", "VERIFIED")
    table = [head]
    for r in rows:
        beat = (r.heartbeat or "never") + (" STALE" if r.stale else "")
        order = f"{r.last_action} {r.last_order[:8]}" if r.last_order else "-"
        verified = "-" if r.bundle_verified is None else ("yes" if r.bundle_verified else "NO")
        if r.bundle_stored:
            verified += ", stored"
        table.append((r.host, beat, r.isolation, order, r.last_result or "-", r.last_bundle or "-", verified))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    )
