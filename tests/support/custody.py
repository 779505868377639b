"""Three people with keys and a real collected bundle, shared by the custody and package tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tests.support.env import Cli

PEOPLE = {
    "it": ("Ida Responder", "IT responder", "City IT"),
    "investigator": ("Ivan Investigator", "investigator", "City IT Security"),
    "police": ("Paula Police", "detective", "City PD"),
}


@dataclass
class Person:
    cli: Cli
    fp: str


def make_person(base: Path, who: str) -> Person:
    cli = Cli(base / f"home-{who}")
    name, role, org = PEOPLE[who]
    fp = cli("keys", "generate", "--name", name, "--role", role, "--org", org, check=True).stdout.strip()
    return Person(cli, fp)


def introduce(a: Person, b: Person, tmp: Path) -> None:
    """`b` trusts `a`'s public key, as after a hand-over of the key file."""
    out = tmp / f"pub-{a.fp[7:15]}-{b.fp[7:15]}"
    a.cli("keys", "export-public", a.fp, "--out", out, check=True)
    b.cli("keys", "trust", out / "public.pem", check=True)


def collect_bundle(person: Person, tmp: Path, out: Path) -> Path:
    src = tmp / "evidence-src"
    (src / "logs").mkdir(parents=True, exist_ok=True)
    (src / "logs" / "auth.log").write_text("Mar  2 10:00:01 clerk sshd[1]: Accepted password for bob\n")
    (src / "mail.mbox").write_text("From bob@example.org\nSubject: invoice\n\nplease pay\n")
    os.utime(src / "logs" / "auth.log", (1_767_225_600, 1_767_225_600))
    proc = person.cli(
        "collect", "--case", "OKC-2026-0042", "--out", out, src, "--reason", "ransom note", check=True
    )
    return Path(proc.stdout.strip().splitlines()[-1])


def transfer_to_investigator(it: Person, bundle: Path, reason: str) -> None:
    """IT hands the bundle to the investigator: a signed `transferred` event."""
    it.cli(
        "custody",
        "add",
        bundle,
        "--event",
        "transferred",
        "--reason",
        reason,
        "--to",
        "Ivan Investigator, City IT Security",
        check=True,
    )
