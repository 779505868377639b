"""`sealbox custody show|add` and the continuation chain: appended, signed, and every edit caught."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.support.custody import collect_bundle, introduce, make_person, transfer_to_investigator
from tests.support.env import clear_flags

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def sealed_chain(tmp_path_factory: pytest.TempPathFactory):
    """Two people and a bundle sealed by one, handed to the other, with two events of theirs:
    made once (seven sealbox runs); each test gets a copy of the bundle."""
    base = tmp_path_factory.mktemp("chain")
    it = make_person(base, "it")
    inv = make_person(base, "investigator")
    introduce(it, inv, base)
    out = base / "bundles"
    out.mkdir()
    bundle = collect_bundle(it, base, out)
    transfer_to_investigator(it, bundle, "hand-over for analysis")
    inv.cli("custody", "add", bundle, "--event", "verified", "--reason", "hashes checked", check=True)
    inv.cli("custody", "add", bundle, "--event", "note", "--reason", "copied to case share", check=True)
    yield it, inv, bundle
    clear_flags(out)


@pytest.fixture
def chain(sealed_chain, tmp_path: Path):
    it, inv, bundle = sealed_chain
    return it, inv, _copy(bundle, tmp_path)


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
        "contact": None,
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


# -- every way a stored custody line can be wrong is a finding, never a crash ----------------------


@pytest.fixture(scope="module")
def sealed_with_events(tmp_path_factory: pytest.TempPathFactory):
    """One sealed bundle with two continuation events; tests change copies of it."""
    base = tmp_path_factory.mktemp("parse")
    it = make_person(base, "it")
    out = base / "bundles"
    out.mkdir()
    bundle = collect_bundle(it, base, out)
    transfer_to_investigator(it, bundle, "hand-over")
    it.cli("custody", "add", bundle, "--event", "note", "--reason", "stored in the safe", check=True)
    yield it, bundle
    clear_flags(out)


def _copy(bundle: Path, tmp_path: Path) -> Path:
    from tests.support.builders import writable_copy

    return writable_copy(bundle, tmp_path)


def _with_line(bundle: Path, number: int, new: bytes) -> None:
    path = bundle / "custody/continuation.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = new
    path.write_bytes(b"\n".join(lines))


def _field(bundle: Path, number: int, **changes) -> bytes:
    ev = json.loads((bundle / "custody/continuation.jsonl").read_bytes().splitlines()[number - 1])
    ev.update(changes)
    return json.dumps(ev, sort_keys=True, separators=(",", ":")).encode()


MUTATIONS = {
    "crlf": (
        lambda b: (b / "custody/continuation.jsonl").write_bytes(
            (b / "custody/continuation.jsonl").read_bytes().replace(b"\n", b"\r\n")
        ),
        "custody-line-ending",
    ),
    "non-utf8": (lambda b: _with_line(b, 1, b'{"seq":\xff}'), "custody-not-utf8"),
    "deep": (lambda b: _with_line(b, 1, b"[" * 200_000 + b"]" * 200_000), "custody-unreadable"),
    "deep-object": (lambda b: _with_line(b, 1, b'{"a":' * 50 + b"1" + b"}" * 50), "custody-unreadable"),
    "not-json": (lambda b: _with_line(b, 1, b"seq=1"), "custody-unreadable"),
    "nan": (lambda b: _with_line(b, 1, b'{"seq":NaN}'), "custody-unreadable"),
    "float": (lambda b: _with_line(b, 1, _field(b, 1, seq=1.5)), "custody-unreadable"),
    "duplicate-key": (lambda b: _with_line(b, 1, b'{"seq":1,"seq":2}'), "custody-unreadable"),
    "seq-string": (lambda b: _with_line(b, 1, _field(b, 1, seq="9")), "custody-field-invalid"),
    "seq-bool": (lambda b: _with_line(b, 1, _field(b, 1, seq=True)), "custody-field-invalid"),
    "actor-list": (lambda b: _with_line(b, 1, _field(b, 1, actor=["x"])), "custody-field-invalid"),
    "actor-key-int": (
        lambda b: _with_line(
            b,
            1,
            _field(b, 1, actor={"key": 1, "name": "x", "role": "", "organization": "", "public_key": ""}),
        ),
        "custody-field-invalid",
    ),
    "details-list": (lambda b: _with_line(b, 1, _field(b, 1, details=[])), "custody-field-invalid"),
    "prev-int": (lambda b: _with_line(b, 1, _field(b, 1, prev=0)), "custody-field-invalid"),
    "sig-null": (lambda b: _with_line(b, 1, _field(b, 1, sig=None)), "custody-field-invalid"),
    "array": (lambda b: _with_line(b, 1, b"[1,2]"), "custody-field-invalid"),
    "empty-line": (lambda b: _with_line(b, 1, b""), "custody-unreadable"),
    "no-final-newline": (
        lambda b: (b / "custody/continuation.jsonl").write_bytes(
            (b / "custody/continuation.jsonl").read_bytes()[:-1]
        ),
        "custody-line-partial",
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_malformed_custody_line_is_a_finding_never_a_crash(sealed_with_events, tmp_path, name) -> None:
    from manifest.signing.custody import verify_chain

    _it, bundle = sealed_with_events
    copy = _copy(bundle, tmp_path)
    mutate, kind = MUTATIONS[name]
    mutate(copy)
    findings, lines = verify_chain(copy)
    assert kind in [f.kind for f in findings], findings
    assert all(line.event is None or isinstance(line.event["seq"], int) for line in lines)


def test_a_malformed_line_through_the_cli_is_one_finding_line_and_exit_1(
    sealed_with_events, tmp_path
) -> None:
    it, bundle = sealed_with_events
    copy = _copy(bundle, tmp_path)
    _with_line(copy, 1, b"[" * 200_000 + b"]" * 200_000)
    for args in (("verify", copy), ("custody", "show", copy)):
        proc = it.cli(*args)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    _with_line(copy, 1, _field(bundle, 1, actor=["x"]))
    proc = it.cli("report", copy, "--out", tmp_path / "r.html")
    assert proc.returncode == 1 and "NOT VERIFIED" in proc.stderr, proc.stderr
    assert "custody-field-invalid" in (tmp_path / "r.html").read_text()


def test_crlf_line_ends_break_the_link_for_sealbox_as_for_the_readme_sed_check(
    sealed_with_events, tmp_path
) -> None:
    import subprocess

    from manifest.signing.custody import verify_chain

    _it, bundle = sealed_with_events
    copy = _copy(bundle, tmp_path)
    path = copy / "custody/continuation.jsonl"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    # The README's by-hand check: line 1 without its newline, hashed, is line 2's prev.
    sed = subprocess.run(
        f"sed -n '1p' {path} | tr -d '\\n' | sha256sum", shell=True, capture_output=True, check=True
    )
    line2 = path.read_bytes().split(b"\n")[1].rstrip(b"\r")
    by_hand_holds = sed.stdout.split()[0].decode() == json.loads(line2)["prev"]
    findings, _ = verify_chain(copy)
    assert not by_hand_holds and findings, "sealbox and the by-hand check must agree: broken"
    assert {"custody-line-ending"} <= {f.kind for f in findings}


@pytest.mark.parametrize("kind", ["directory", "symlink", "fifo"])
def test_a_continuation_log_that_is_not_a_regular_file_is_never_followed(
    sealed_with_events, tmp_path, kind
) -> None:
    import os

    from manifest.signing.custody import verify_chain

    it, bundle = sealed_with_events
    copy = _copy(bundle, tmp_path)
    path = copy / "custody/continuation.jsonl"
    saved = path.read_bytes()
    path.unlink()
    if kind == "directory":
        path.mkdir()
    elif kind == "symlink":
        (tmp_path / "outside.jsonl").write_bytes(saved)
        path.symlink_to(tmp_path / "outside.jsonl")
    else:
        os.mkfifo(path)
    findings, lines = verify_chain(copy)  # a fifo would block here if it were opened
    assert ("custody-file-not-regular", "custody/continuation.jsonl") in [(f.kind, f.where) for f in findings]
    assert not [line for line in lines if line.file == "custody/continuation.jsonl"]
    proc = it.cli("custody", "add", copy, "--event", "note", "--reason", "x")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "not a regular file" in proc.stderr


def test_a_deleted_continuation_log_is_a_finding(sealed_with_events, tmp_path) -> None:
    from manifest.signing.custody import verify_chain

    _it, bundle = sealed_with_events
    copy = _copy(bundle, tmp_path)
    (copy / "custody/continuation.jsonl").unlink()
    findings, _ = verify_chain(copy)
    assert [f.kind for f in findings] == ["custody-continuation-missing"]


def test_a_custody_log_beyond_the_cap_is_a_finding_and_never_read(sealed_with_events, tmp_path) -> None:
    from manifest.signing.custody import CUSTODY_MAX_BYTES, verify_chain

    _it, bundle = sealed_with_events
    copy = _copy(bundle, tmp_path)
    with open(copy / "custody/continuation.jsonl", "r+b") as fh:
        fh.truncate(CUSTODY_MAX_BYTES + 1)  # sparse
    findings, _ = verify_chain(copy)
    assert ("custody-too-large", "custody/continuation.jsonl") in [(f.kind, f.where) for f in findings]
    assert str(CUSTODY_MAX_BYTES) in next(f.message for f in findings if f.kind == "custody-too-large")
