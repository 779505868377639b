"""The custody report's content, through the real CLI: a first page a detective reads in a
minute, the chain-of-custody form, events as sentences, the incident report with its later
notes, the next steps from the one guide, and refusals that name the problem."""

from __future__ import annotations

import html as htmllib
import inspect
import os
import re
from typing import TYPE_CHECKING

import pytest

from manifest.handover.next_steps import next_steps
from tests.support.custody import collect_bundle, introduce, make_person
from tests.support.env import clear_flags
from tests.support.report import Story

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    base = tmp_path_factory.mktemp("report-story")
    story = Story(base, 30)
    yield story
    clear_flags(base / "bundles")


@pytest.fixture(scope="module")
def page(story: Story) -> str:
    return story.report(story.bundle.parent.parent / "report.html").read_text()


def _visible(page: str) -> str:
    """The page's text as a reader sees it: no tags, no styles, entities decoded."""
    body = re.sub(r"<style>.*?</style>|<title>.*?</title>", " ", page, flags=re.S)
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", body))


def _section(page: str, title: str) -> str:
    start = page.index(f"<h2>{title}")
    end = page.find("<h2>", start + 4)
    return page[start : end if end > 0 else None]


def test_first_page_says_what_whose_when_who_verified_and_what_is_open(story: Story, page: str) -> None:
    first = _visible(page.split('<div class="first-page">', 1)[1].split("<h2>Chain of custody", 1)[0])
    for needle in (
        "Case",
        "OKC-2026-0042",
        "EX-0042-01",
        "Dell Latitude 7440",
        "What",
        "4 item(s)",
        "Whose (device)",
        "When (UTC)",
        "Collected by",
        "Ida Responder",
        "Verified",
        "VERIFIED",
        "Held now by",
        "Det. Paula Police, City PD (transfer not yet accepted)",
        "Bundle id",
    ):
        assert needle in first, needle
    assert re.search(r"Open transfers\s+1 open\s+event 30\b", first), first
    assert "event 6," not in first  # the accepted transfer is complete, not open


def test_custody_table_names_both_parties_and_fingerprints(story: Story, page: str) -> None:
    table = page[
        page.index('<table class="custody">') : page.index("</table>", page.index('<table class="custody">'))
    ]
    assert table.count('<tr id="custody-') == story.events == 30
    accepted = table[table.index('<tr id="custody-6">') : table.index('<tr id="custody-7">')]
    text = _visible(accepted)
    for needle in (
        "Transferred",
        "custody/continuation.jsonl:3",
        "forensic examination",
        "Ida Responder",
        "Ivan Investigator",
        "accepted",
        "in-person",
        "SEAL-000123",
        "yes",
    ):
        assert needle in text, needle
    assert story.it.fp[7:15] in accepted and story.investigator.fp[7:15] in accepted  # both signatures
    opened = _visible(table[table.index('<tr id="custody-30">') :])
    assert "OPEN: not accepted" in opened and "1Z999AA10123456784" in opened


def test_events_are_sentences_and_a_note_is_its_text(page: str) -> None:
    words = _section(page, "Custody events in words")
    text = _visible(words)
    assert (
        "<blockquote>“Police informed by phone; they will collect the laptop.\n"
        "Desk sergeant: Miller.”</blockquote>" in words
    )
    assert "Ida Responder (IT responder, City IT) handed the evidence over to Ivan Investigator" in text
    assert (
        "Ivan Investigator (investigator, City IT Security) accepted the evidence from Ida Responder" in text
    )
    assert (
        "recorded the event “custody-audited”. Auditor name: Olga Auditor" in text
    )  # unknown kind, in words
    assert "police notified: yes" in text
    visible = _visible(page)
    for raw in ("True", "False", "None", "incident_update", "provided_by", "transfer_sha256", "{", "}"):
        assert raw not in visible, raw


def test_incident_section_merges_later_notes(page: str) -> None:
    text = _visible(_section(page, "Incident report"))
    assert re.search(
        r"Police\s+yes\s+2026-11-24T11:00Z\s+PD case 77\s+custody event 5 by Ida Responder", text
    ), text
    assert "Police informed by phone" in text
    for raw in ("format", "missing", "notifications.police", "True"):
        assert raw not in text, raw


def test_next_steps_are_the_guides_own_words(story: Story, page: str) -> None:
    """The same steps `respond` prints (manifest/handover/next_steps.py), done marks from the notes."""
    section = _section(page, "Next steps")
    incident = {"notifications": {"police": {"notified": True}}}
    # The guide names the signing key in its commands once it takes `key` (as the report passes it).
    key = {"key": story.it.fp} if "key" in inspect.signature(next_steps).parameters else {}
    for step in next_steps(story.bundle, "OKC-2026-0042", incident, True, **key):
        assert htmllib.escape(step.title, quote=False) in section, step.title
        assert _visible(htmllib.escape(step.detail.replace("`", ""), quote=False)).strip() in _visible(
            section.replace("<code>", "").replace("</code>", "")
        ), step.detail
    police = section[section.index("Notify the police") :]
    assert police.index("(done)") < police.index("</li>")


def test_timeline_has_labelled_axes(page: str) -> None:
    svg = _section(page, "Timeline")
    assert svg.count("<svg") == 2
    for label in (
        "Time (UTC)",
        "Modification time (UTC)",
        ">files<",
        "Transferred",
        "Accepted",
        "open transfer",
    ):
        assert label in svg, label


def test_report_is_self_contained(page: str) -> None:
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page), "external asset"
    assert "<script" not in page
    assert "@page" in page and "counter(pages)" in page


def test_pdf_without_chromium_is_refused_in_one_line(tmp_path: Path) -> None:
    it = make_person(tmp_path, "it")
    (tmp_path / "b").mkdir()
    bundle = collect_bundle(it, tmp_path, tmp_path / "b")
    it.cli.env = {**it.cli.env, "PATH": str(tmp_path / "empty")}
    proc = it.cli("report", bundle, "--pdf", "--out", tmp_path / "r.pdf")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no Chromium found" in proc.stderr
    assert not (tmp_path / "r.pdf").exists()
    proc = it.cli("report", bundle, "--pdf")
    assert proc.returncode == 2 and "--pdf needs --out" in proc.stderr
    (tmp_path / "taken.html").write_text("keep me")
    proc = it.cli("report", bundle, "--out", tmp_path / "taken.html")
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert (tmp_path / "taken.html").read_text() == "keep me"
    clear_flags(tmp_path / "b")
    assert os.environ.get("PATH")


def test_respond_incident_and_a_later_incident_note_read_as_one_report(tmp_path: Path) -> None:
    """`respond` seals incident.json (police not notified); `incident-note` says they were: the
    report shows them notified, with the note as the source, and the next step done."""
    it = make_person(tmp_path, "it")
    out = tmp_path / "out"
    proc = it.cli(
        "respond",
        "--case",
        "OKC-2026-0042",
        "--out",
        out,
        "--profile",
        "minimal",
        "--no-prompt",
        "--reporter",
        "Ann Clerk",
        "--observed",
        "A ransom note on the desktop",
        "--crime-suspected",
        "--notified",
        "it=2026-12-01T09:00Z",
    )
    assert proc.returncode == 0, proc.stderr
    (bundle,) = out.iterdir()
    note = it.cli("incident-note", bundle, "--notified", "police=2026-12-01T11:00Z", "--text", "PD case 77")
    assert note.returncode == 0, note.stderr
    report = tmp_path / "r.html"
    assert it.cli("report", bundle, "--out", report).returncode == 0
    page = report.read_text()
    incident = _visible(_section(page, "Incident report"))
    assert "A ransom note on the desktop" in incident and "Ann Clerk" in incident
    assert re.search(r"City IT\s+yes\s+2026-12-01T09:00Z\s+sealed report", incident), incident
    assert re.search(r"Police\s+yes\s+2026-12-01T11:00Z\s+custody event \d+ by Ida Responder", incident)
    assert re.search(r"Crime suspected\s+yes", incident)
    assert "PD case 77" in incident
    for raw in ("True", "False", "format", "provided_by", "sealbox-incident"):
        assert raw not in incident, raw
    steps = _section(page, "Next steps")
    assert steps[steps.index("Notify the police") :].index("(done)") < 200
    words = _visible(_section(page, "Custody events in words"))
    assert "was given the next steps after sealing; the bundle verified at that point" in words
    assert "2. Report to city IT now (already done)" in words
    clear_flags(out)


def test_export_and_receive_show_as_one_hand_over_in_the_receivers_copy(tmp_path: Path) -> None:
    """In the police's copy the `exported` row names the police as receivers (their `received`
    event completes it) and carries both signatures; verified on receipt is on the first page."""
    it, police = make_person(tmp_path, "it"), make_person(tmp_path, "police")
    introduce(it, police, tmp_path)
    (tmp_path / "b").mkdir()
    bundle = collect_bundle(it, tmp_path, tmp_path / "b")
    (tmp_path / "pkg").mkdir()
    it.cli("export", bundle, "--to", "Paula Police, City PD", "--out", tmp_path / "pkg", check=True)
    (tmp_path / "in").mkdir()
    police.cli("receive", tmp_path / "pkg" / (bundle.name + ".tar"), "--out", tmp_path / "in", check=True)
    report = tmp_path / "r.html"
    proc = police.cli("report", tmp_path / "in" / bundle.name, "--out", report)
    assert proc.returncode == 0, proc.stderr
    page = report.read_text()
    exported = page[page.index('<tr id="custody-4">') : page.index('<tr id="custody-5">')]
    text = _visible(exported)
    assert "Exported" in text and "Ida Responder" in text and "Paula Police" in text and "received" in text
    assert it.fp[7:15] in exported and police.fp[7:15] in exported
    first = _visible(page.split("<h2>Chain of custody", 1)[0])
    assert "verified on receipt by Paula Police (detective, City PD)" in first
    assert re.search(r"Held now by\s+Paula Police \(detective, City PD\)", first)
    clear_flags(tmp_path / "b")
    clear_flags(tmp_path / "in")
