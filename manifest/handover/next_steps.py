"""What the responder does after the bundle is sealed: the city guide's next steps.

The steps are adjusted to what the incident report already says (who has been told), and the
same list is printed and recorded with the bundle as a custody `note`, so the file shows what
the responder was told to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    detail: str
    done: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "detail": self.detail, "done": self.done}


def _notified(incident: dict[str, Any] | None, party: str) -> bool:
    if not incident:
        return False
    return bool(((incident.get("notifications") or {}).get(party) or {}).get("notified"))


def isolate_advice(case: str, config: Path | None) -> str:
    """How to cut the host off without cutting IT off: the isolate command to run."""
    if config is not None:
        return (
            f"Run `sealbox isolate --case {case} --config '{config}' --reason 'incident response'`: it keeps "
            "the machine on and blocks the network except IT's standing channel in that file "
            "(management server, vault, resolvers), and checks that IT is still reachable."
        )
    return (
        "Unplug the network cable / turn off Wi-Fi, or ask city IT for their server's address and "
        f"port and run `sealbox isolate --case {case} --allow ADDRESS:PORT/tcp --check ADDRESS:PORT "
        "--reason 'incident response'` (keeps the machine on and blocks everything but IT). City IT "
        "can make this one step for every host with /etc/sealbox/isolation.toml."
    )


def next_steps(
    bundle: Path,
    case: str,
    incident: dict[str, Any] | None,
    verified: bool,
    isolation_config: Path | None = None,
    *,
    key: str | None = None,
    live: bool = True,
) -> list[Step]:
    """The ordered checklist for this bundle and what is already known to be done.

    `isolation_config`: the isolation.toml holding IT's standing channel, if there is one
    (`agent.isolation.config.standing_channel()` finds it). `key`: the fingerprint that signed
    the bundle, named in the commands given (a store may hold several keys). `live`: False for a
    collection from an image or a removed disk (a dead box): nothing there is running."""
    crime = (incident or {}).get("crime_suspected")
    quoted = f"'{bundle}'"
    key_arg = f" --key {key}" if key else ""
    first = (
        Step(
            "keep-powered",
            "Keep the device powered on and isolated",
            "Do not shut it down, reboot, log out or 'clean it up': memory and running processes are "
            "evidence. " + isolate_advice(case, isolation_config),
        )
        if live
        else Step(
            "keep-original",
            "Keep the original disk or image unchanged",
            "This was a dead-box collection (from an image or a removed disk): nothing on it was "
            "running, so there was no volatile state to keep. Keep the original drive write-blocked, "
            "sealed in an evidence bag and labelled (record the seal number with `sealbox custody "
            f"add {quoted} --event stored --location PLACE --seal NUMBER --reason ...`); keep the "
            "image file read-only with its hash; never boot the original.",
        )
    )
    steps = [
        first,
        Step(
            "report-it",
            "Report to city IT now",
            f"Give them the case id {case}, what you observed, and where the bundle is: {quoted}.",
            done=_notified(incident, "it"),
        ),
        Step(
            "police",
            "Notify the police if a crime is suspected",
            (
                "A crime is suspected: call the police. "
                if crime
                else "If anything suggests a crime (fraud, extortion, stolen data), call the police. "
            )
            + "For them, export the bundle as a signed package with "
            f"`sealbox export {quoted}{key_arg} --to 'Officer name, Police department' --out DIR` and "
            "hand over "
            "the package with this case id; they can check it without sealbox (VERIFY.txt inside).",
            done=_notified(incident, "police"),
        ),
        Step(
            "supervisor",
            "Inform your supervisor",
            "Tell them what happened and that evidence was preserved under case " + case + ".",
            done=_notified(incident, "supervisor"),
        ),
        Step(
            "records-custodian",
            "Inform the records custodian",
            "Personal or public records may be affected; they decide on legal notification duties.",
            done=_notified(incident, "records_custodian"),
        ),
        Step(
            "keep-bundle",
            "Keep the bundle for follow-up",
            f"Do not edit, move into a synced folder, or delete {quoted}. Copy it to removable media "
            f"or a case share; anyone can re-check it any time with `sealbox verify {quoted}`. "
            "Later findings go into its custody log as notes (`sealbox incident-note`).",
        ),
    ]
    if not verified:
        steps.insert(
            0,
            Step(
                "verification-failed",
                "The bundle did NOT verify",
                f"Do not hand it over as is. Run `sealbox verify {quoted}` and report the findings "
                "to city IT.",
            ),
        )
    return steps


def render(steps: list[Step]) -> str:
    lines = ["Next steps (city incident guide):"]
    for n, step in enumerate(steps, start=1):
        mark = "[done] " if step.done else ""
        lines.append(f"  {n}. {mark}{step.title}")
        lines.append(f"     {step.detail}")
    return "\n".join(lines)
