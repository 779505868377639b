"""`sealbox custody show|add` and the continuation chain: appended, signed, and every edit caught."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from conftest import clear_flags
from custody_helpers import collect_bundle, introduce, make_person, transfer_to_investigator

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def chain(tmp_path: Path):
    it = make_person(tmp_path, "it")
    inv = make_person(tmp_path, "investigator")
    introduce(it, inv, tmp_path)
    out = tmp_path / "bundles"
    out.mkdir()
    bundle = collect_bundle(it, tmp_path, out)
    transfer_to_investigator(it, bundle, "hand-over for analysis")
    inv.cli("custody", "add", bundle, "--event", "verified", "--reason", "hashes checked", check=True)
    inv.cli("custody", "add", bundle, "--event", "note", "--reason", "copied to case share", check=True)
    yield it, inv, bundle
    clear_flags(out)


def test_custody_show_lists_every_event_with_actor_and_validity(chain) -> None:
    it, inv, bundle = chain
    proc = inv.cli("custody", "show", bundle, "--json", check=True)
    data = json.loads(proc.stdout)
    events = data["events"]
    assert data["holds"] is True
    assert [e["event"] for e in events][-4:] == ["sealed", "transferred", "verified", "note"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-3]["actor"]["key"] == it.fp and events[-3]["details"] == {
        "to": "Ivan Investigator, City IT Security"
    }
    assert events[-1]["actor"] == {
        "name": "Ivan Investigator",
        "role": "investigator",
        "organization": "City IT Security",
        "key": inv.fp,
    }
    assert all(e["holds"] and e["actor_trusted"] for e in events)
    text = inv.cli("custody", "show", bundle, check=True).stdout
    assert "hand-over for analysis" in text and inv.fp in text and "[trusted]" in text


def test_verify_checks_continuation_and_lists_actors(chain) -> None:
    it, inv, bundle = chain
    proc = inv.cli("verify", bundle, "--json")
    assert proc.returncode == 0, proc.stdout
    report = json.loads(proc.stdout)
    assert {a["fingerprint"]: a["trusted"] for a in report["actors"]} == {it.fp: True, inv.fp: True}
    first = (bundle / "custody/continuation.jsonl").read_bytes().splitlines()[0]
    import hashlib

    assert (
        json.loads(first)["prev"]
        == hashlib.sha256((bundle / "tagmanifest-sha256.txt").read_bytes()).hexdigest()
    )


def _rewrite_continuation(bundle: Path, lines: list[bytes]) -> None:
    path = bundle / "custody/continuation.jsonl"
    clear_flags(path)  # the append-only flag would (rightly) refuse this edit
    path.write_bytes(b"".join(line + b"\n" for line in lines))


@pytest.mark.parametrize("line_no", [1, 3])
def test_editing_any_continuation_line_is_caught_with_the_line_named(chain, line_no: int) -> None:
    _it, inv, bundle = chain
    path = bundle / "custody/continuation.jsonl"
    lines = path.read_bytes().splitlines()
    ev = json.loads(lines[line_no - 1])
    ev["reason"] = ev["reason"] + " (edited)"
    lines[line_no - 1] = json.dumps(ev, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    _rewrite_continuation(bundle, lines)
    proc = inv.cli("verify", bundle)
    assert proc.returncode == 1
    where = f"custody/continuation.jsonl:{line_no}"
    assert f"custody-signature-invalid: {where}: signature does not match the event" in proc.stdout
    if line_no < 3:  # the next line's prev no longer matches the edited line
        assert f"custody-link-broken: custody/continuation.jsonl:{line_no + 1}" in proc.stdout
    shown = inv.cli("custody", "show", bundle)
    assert shown.returncode == 1 and "BAD" in shown.stdout


def test_deleting_a_continuation_line_is_a_seq_gap_and_broken_link(chain) -> None:
    _it, inv, bundle = chain
    lines = (bundle / "custody/continuation.jsonl").read_bytes().splitlines()
    _rewrite_continuation(bundle, [lines[0], lines[2]])
    proc = inv.cli("verify", bundle)
    assert proc.returncode == 1
    assert "custody-seq-gap: custody/continuation.jsonl:2" in proc.stdout
    assert "custody-link-broken: custody/continuation.jsonl:2" in proc.stdout


def test_custody_add_refuses_bad_requests(chain) -> None:
    _it, inv, bundle = chain
    proc = inv.cli("custody", "add", bundle, "--event", "transferred", "--reason", "x")
    assert proc.returncode == 2 and "needs --to NAME" in proc.stderr
    proc = inv.cli("custody", "add", bundle, "--event", "sealed", "--reason", "x")
    assert proc.returncode == 2
    before = (bundle / "custody/continuation.jsonl").read_bytes()
    proc = inv.cli("custody", "add", bundle.parent / "nope", "--event", "note", "--reason", "x")
    assert proc.returncode != 0
    assert (bundle / "custody/continuation.jsonl").read_bytes() == before
