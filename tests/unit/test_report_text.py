"""The report's words without a browser: the incident report with later notes applied, each
event kind as a sentence (an unknown one too), time axes whose labels never touch, and email
messages by date."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import pytest

from manifest.handover.report.chain import Chain, Entry
from manifest.handover.report.email import email_summary
from manifest.handover.report.incident import read_incident
from manifest.handover.report.sentences import describe
from manifest.handover.report.timeline import CHAR_W, custody_svg, ticks
from manifest.signing.custody import ChainLine

if TYPE_CHECKING:
    from pathlib import Path

IDA = {
    "name": "Ida Responder",
    "role": "IT responder",
    "organization": "City IT",
    "key": "SHA256:" + "a" * 64,
}
IVAN = {
    "name": "Ivan Investigator",
    "role": "investigator",
    "organization": "City IT Security",
    "key": "SHA256:" + "b" * 64,
}
S = 10**9
IDA_SAYS = "Ida Responder (IT responder, City IT) "


def entry(
    seq: int, kind: str, details: dict[str, Any], actor: dict[str, str] = IDA, reason: str = ""
) -> Entry:
    event = {
        "seq": seq,
        "time": f"2026-12-01T10:{seq:02d}:00Z",
        "event": kind,
        "actor": actor,
        "details": details,
        "reason": reason,
    }
    raw = json.dumps(event).encode()
    line = ChainLine("custody/continuation.jsonl", seq, raw, event)
    return Entry(
        seq,
        event["time"],
        kind,
        line.where,
        actor,
        details,
        reason,
        line_sha256=hashlib.sha256(raw).hexdigest(),
        line=line,
    )


def test_incident_notes_are_applied_in_order_with_their_source(tmp_path: Path) -> None:
    (tmp_path / "metadata").mkdir()
    sealed = {
        "format": "sealbox-incident/1",
        "case": "C",
        "recorded_at": "2026-12-01T09:00:00Z",
        "reporter": {"name": "Ann", "role": None, "department": None, "contact": None},
        "crime_suspected": None,
        "notifications": {"police": {"notified": False, "when": None, "who": None}},
        "missing": ["reporter.role", "crime_suspected", "notifications.police.when"],
        "provided_by": {"reporter.name": "flag", "notifications.police.notified": "prompt"},
    }
    (tmp_path / "metadata" / "incident.json").write_text(json.dumps(sealed))
    chain = Chain(
        [
            entry(
                5,
                "note",
                {
                    "incident_update": {
                        "notifications.police.notified": True,
                        "notifications.police.when": "11:00Z",
                    },
                    "text": "PD case 77",
                },
                reason="incident report addition",
            ),
            entry(6, "note", {"text": "unrelated remark"}),
            entry(
                7,
                "note",
                {"incident_update": {"crime_suspected": True}, "text": ""},
                IVAN,
                reason="incident report addition",
            ),
        ]
    )
    incident = read_incident(tmp_path, chain)
    assert incident.get("notifications.police.notified") is True
    assert incident.get("notifications.police.when") == "11:00Z"
    assert incident.sources["notifications.police.notified"].startswith("custody event 5 by Ida Responder")
    assert incident.sources["reporter.name"] == "sealed report (2026-12-01 09:00:00 UTC)"
    assert incident.missing() == ["reporter.role"]
    assert [e.seq for e in incident.additions] == [5, 7]


@pytest.mark.parametrize(
    ("kind", "details", "said"),
    [
        (
            "transferred",
            {"to": "Det. P, City PD", "method": "courier", "tracking": "1Z9", "seal": "S-1"},
            IDA_SAYS + "handed the evidence over to Det. P, City PD. Method: courier. "
            "Tracking number: 1Z9. Seal number: S-1. The receiver has NOT accepted it: the transfer is open.",
        ),
        (
            "examined",
            {"purpose": "triage", "tools": ["mactime", "less"], "result": "note written 10:02"},
            IDA_SAYS + "examined the evidence. Purpose: triage. Tools: mactime, less. "
            "Result: note written 10:02.",
        ),
        (
            "disposed",
            {"disposition": "returned", "to": "the owner", "witness": "Bo"},
            IDA_SAYS + "returned the evidence to the owner. Witness: Bo.",
        ),
        (
            "stored",
            {"location": "locker 7", "retain_until": "2033-12-31"},
            IDA_SAYS + "stored the evidence at locker 7. Retained until: 2033-12-31.",
        ),
        (
            "labelled",
            {"exhibit": {"number": "EX-1", "description": "laptop"}},
            IDA_SAYS + "labelled the evidence as exhibit EX-1 (laptop).",
        ),
        (
            "custody-audited",
            {"auditor_name": "Olga", "passed": True, "finding_count": 0, "note": None},
            IDA_SAYS + "recorded the event “custody-audited”. Auditor name: Olga. "
            "Passed: yes. Finding count: 0.",
        ),
        (
            "note",
            {"text": "seal intact", "done": False, "key": "keep-powered"},
            IDA_SAYS + "wrote a note. Done: no. Key: keep-powered.",
        ),
    ],
)
def test_each_event_is_a_sentence(kind: str, details: dict[str, Any], said: str) -> None:
    e = entry(3, kind, details)
    assert describe(e, Chain([e])).sentence == said


def test_an_accepted_transfer_is_complete_and_a_wrong_key_does_not_complete_it() -> None:
    given = entry(3, "transferred", {"to": "Ivan", "to_key": IVAN["key"]})
    wrong = entry(4, "accepted", {"transfer_seq": 3, "transfer_sha256": given.line_sha256}, IDA)
    right = entry(5, "accepted", {"transfer_seq": 3, "transfer_sha256": given.line_sha256}, IVAN)
    assert Chain([given, wrong]).open_transfers()[0].given is given
    (t,) = Chain([given, wrong, right]).transfers()
    assert t.accepted is right
    forged = entry(5, "accepted", {"transfer_seq": 3, "transfer_sha256": "0" * 64}, IVAN)
    assert Chain([given, forged]).open_transfers() != []
    assert "accepted it at 2026-12-01 10:05:00 UTC" in describe(given, Chain([given, right])).sentence


@pytest.mark.parametrize(
    "span_s", [0.5, 5, 59, 3600, 3 * 86400, 40 * 86400, 2 * 365 * 86400, 56 * 365 * 86400]
)
def test_time_axis_labels_fit_and_do_not_touch(span_s: float) -> None:
    lo = 1_764_000_000 * S
    marks, _extra = ticks(lo, lo + int(span_s * S), 600)
    assert 1 <= len(marks) <= 600 // (CHAR_W * 11 + 16) + 1
    assert all(len(text) <= 11 for _t, text in marks)
    times = [t for t, _ in marks]
    assert times == sorted(times) and lo <= times[0] and times[-1] <= lo + span_s * S


def test_custody_figure_has_one_lane_label_per_kind_at_any_count() -> None:
    svg = custody_svg(
        [
            (1_764_000_000 * S + n * S, ("note", "examined", "transferred")[n % 3], n == 499)
            for n in range(500)
        ]
    )
    assert svg.count(">Note<") == 1 and svg.count(">Examined<") == 1 and svg.count("<circle") == 501
    assert "Time (UTC)" in svg and "open transfer" in svg


def test_email_messages_are_listed_by_date(tmp_path: Path) -> None:
    (tmp_path / "metadata").mkdir()
    lines = [
        {
            "item": "000001",
            "source_path": "/m",
            "format": "mbox",
            "from": f"s{n}@x",
            "subject": f"msg {n}",
            "date_utc": f"2024-10-0{d}T10:00:00Z",
            "sha256": "c" * 64,
        }
        for n, d in enumerate((5, 1, 9, 3))
    ]
    lines.append({"item": "000001", "from": "u@x", "subject": "undated", "date_utc": None})
    (tmp_path / "metadata" / "email-index.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    page = email_summary(tmp_path)
    order = [page.index(f"msg {n}") for n in (1, 3, 0, 2)]
    assert order == sorted(order)


def test_legal_authority_reads_as_words() -> None:
    e = entry(
        3,
        "examined",
        {
            "purpose": "triage",
            "authority": {
                "basis": "search warrant",
                "reference": "W-17",
                "issued_by": "District Court",
                "date": "2026-11-30",
            },
        },
    )
    assert describe(e, Chain([e])).sentence == (
        IDA_SAYS + "examined the evidence. Purpose: triage. "
        "Legal authority: search warrant (reference W-17, issued by District Court, 2026-11-30)."
    )
