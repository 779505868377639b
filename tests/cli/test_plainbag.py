"""Plain BagIt bags: the LoC conformance suite case by case, the attacks the suite leaves out
(links, FIFOs, sparse files, encoded names, fetch.txt), and `sealbox verify` dispatching to it."""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from typing import TYPE_CHECKING

import bagit
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manifest.handover.plainbag import MAX_TAG_FILE, is_plain_bag, validate_plain_bag
from tests.support.bagit_suite import CASES, SuiteCase
from tests.support.mutations import MUTATIONS, changed, mutate, snapshot, writable_copy

if TYPE_CHECKING:
    from pathlib import Path


def kinds(findings) -> set[str]:
    return {f.kind for f in findings}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_conformance_suite_case(case: SuiteCase, tmp_path):
    report = validate_plain_bag(case.build(tmp_path / "bag"))
    if case.expect == "valid":
        assert report.ok, [f.line() for f in report.errors]
    elif case.expect == "invalid":
        assert not report.ok
        assert case.kind in kinds(report.errors), [f.line() for f in report.errors]
    else:
        assert report.ok, [f.line() for f in report.errors]
        assert case.kind in kinds(report.warnings), [f.line() for f in report.warnings]


def test_suite_table_is_complete():
    by_expect = {e: sum(c.expect == e for c in CASES) for e in ("valid", "invalid", "warning")}
    assert by_expect == {"valid": 27, "invalid": 27, "warning": 6}


@pytest.mark.parametrize("case", [c for c in CASES if c.expect == "valid"], ids=lambda c: c.id)
def test_valid_cases_are_bags_for_bagit_python_too(case: SuiteCase, tmp_path):
    """The offline cases are real bags: the reference implementation accepts the valid ones."""
    bagit.Bag(str(case.build(tmp_path / "bag"))).validate()


def make_bag(tmp_path: Path, files: dict[str, bytes], checksums=("sha256", "sha512")) -> Path:
    """A bag made by bagit-python (a third-party writer) from `files`, declared BagIt 1.0 (it
    writes 0.97 declarations; its bags meet RFC 8493 otherwise)."""
    bag = tmp_path / "bag"
    for rel, data in files.items():
        (bag / rel).parent.mkdir(parents=True, exist_ok=True)
        (bag / rel).write_bytes(data)
    bagit.make_bag(str(bag), checksums=list(checksums))
    (bag / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    rewrite_tagmanifests(bag)
    return bag


@pytest.fixture
def bag(tmp_path):
    return make_bag(tmp_path, {"notes/a.txt": b"alpha\n", "b.bin": os.urandom(5000)})


def rewrite_tagmanifests(bag: Path) -> None:
    """Re-hash the tag manifests, as someone editing a bag by hand would."""
    for tm in bag.glob("tagmanifest-*.txt"):
        algorithm = tm.name[len("tagmanifest-") : -len(".txt")]
        lines = []
        for line in tm.read_text().splitlines():
            _digest, rel = line.split(" ", 1)
            rel = rel.strip()
            lines.append(f"{hashlib.new(algorithm, (bag / rel).read_bytes()).hexdigest()}  {rel}\n")
        tm.write_text("".join(lines))


def test_bag_made_by_bagit_python_is_valid(bag):
    report = validate_plain_bag(bag)
    assert report.ok and not report.warnings, [f.line() for f in report.errors + report.warnings]
    assert report.algorithms == ["sha256", "sha512"]
    assert (report.payload_files, report.payload_bytes) == (2, 5006)
    assert report.version == "1.0"


def test_flipped_payload_byte_names_file_and_algorithms(bag):
    path = bag / "data/b.bin"
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    report = validate_plain_bag(bag)
    changed = [f for f in report.errors if f.kind == "bagit-payload-changed"]
    assert {(f.where, f.message.split()[0]) for f in changed} == {
        ("data/b.bin", "sha256"),
        ("data/b.bin", "sha512"),
    }


def test_symlink_in_payload_is_an_error_and_not_followed(bag, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"alpha\n")  # identical bytes: following the link would pass the checksum
    (bag / "data/notes/a.txt").unlink()
    (bag / "data/notes/a.txt").symlink_to(outside)
    report = validate_plain_bag(bag)
    assert ("bagit-link", "data/notes/a.txt") in {(f.kind, f.where) for f in report.errors}


def test_symlinked_tag_file_is_an_error(bag, tmp_path):
    copy = tmp_path / "bag-info-copy.txt"
    copy.write_bytes((bag / "bag-info.txt").read_bytes())
    (bag / "bag-info.txt").unlink()
    (bag / "bag-info.txt").symlink_to(copy)
    report = validate_plain_bag(bag)
    assert "bagit-link" in kinds(report.errors)


def test_fifo_in_payload_is_an_error_without_blocking(bag):
    os.mkfifo(bag / "data/pipe")
    started = time.monotonic()
    report = validate_plain_bag(bag)
    assert time.monotonic() - started < 30
    assert ("bagit-not-regular", "data/pipe") in {(f.kind, f.where) for f in report.errors}


def test_sparse_grown_payload_is_not_hashed_past_payload_oxum(bag):
    """A file made 100 GB by `truncate`: Payload-Oxum shows it first, nothing is read past the
    bytes the bag declares, and the run ends at once."""
    os.truncate(bag / "data/b.bin", 100 << 30)
    started = time.monotonic()
    report = validate_plain_bag(bag)
    assert time.monotonic() - started < 30
    assert {"bagit-oxum-mismatch", "bagit-payload-not-checked"} <= kinds(report.errors)


def test_sparse_tag_file_over_cap_is_an_error_not_a_read(bag):
    os.truncate(bag / "manifest-sha256.txt", MAX_TAG_FILE + 1)
    started = time.monotonic()
    report = validate_plain_bag(bag)
    assert time.monotonic() - started < 30
    problems = [f for f in report.errors if f.kind == "bagit-tag-file-unreadable"]
    assert problems and str(MAX_TAG_FILE) in problems[0].message


def test_percent_encoded_line_breaks_and_percent_in_names(tmp_path):
    """RFC 8493 §2.1.3: CR, LF and % in a path are percent-encoded in the manifest, and only
    those (a literal %41 names a file called '%41')."""
    names = {"line\nbreak.txt": "line%0Abreak.txt", "car\rriage.txt": "car%0driage.txt"}
    names |= {"100%25.txt": "100%2525.txt", "%41.txt": "%41.txt"}
    bag = tmp_path / "bag"
    (bag / "data").mkdir(parents=True)
    lines = []
    for name, encoded in names.items():
        (bag / "data" / name).write_bytes(name.encode())
        lines.append(f"{hashlib.sha256(name.encode()).hexdigest()}  data/{encoded}\n")
    (bag / "manifest-sha256.txt").write_text("".join(lines))
    (bag / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    report = validate_plain_bag(bag)
    assert report.ok and not report.warnings, [f.line() for f in report.errors + report.warnings]
    (bag / "data/line\nbreak.txt").write_bytes(b"changed\n")
    assert ("bagit-payload-changed", "data/line\nbreak.txt") in {
        (f.kind, f.where) for f in validate_plain_bag(bag).errors
    }


def test_unencoded_percent_in_1_0_manifest_is_a_warning(tmp_path):
    bag = make_bag(tmp_path, {"100%.txt": b"pc\n"})
    report = validate_plain_bag(bag)
    assert report.ok and "bagit-path-unencoded-percent" in kinds(report.warnings)


def test_fetch_entry_not_yet_fetched_makes_bag_incomplete(bag):
    (bag / "data/notes/a.txt").unlink()
    (bag / "fetch.txt").write_text("https://example.org/a.txt 6 data/notes/a.txt\n")
    report = validate_plain_bag(bag)
    assert ("bagit-fetch-not-fetched", "data/notes/a.txt") in {(f.kind, f.where) for f in report.errors}


def test_fetch_entry_outside_every_manifest_is_an_error(bag):
    (bag / "fetch.txt").write_text("https://example.org/x 1 data/x.txt\n")
    report = validate_plain_bag(bag)
    assert "bagit-fetch-unlisted" in kinds(report.errors)


def test_payload_missing_from_one_manifest_is_an_error_in_1_0(bag):
    manifest = bag / "manifest-sha512.txt"
    manifest.write_text("".join(x for x in manifest.read_text().splitlines(True) if "b.bin" not in x))
    rewrite_tagmanifests(bag)
    report = validate_plain_bag(bag)
    assert [(f.kind, f.where) for f in report.errors] == [("bagit-payload-unlisted", "data/b.bin")]


def test_names_colliding_on_other_file_systems_are_a_warning(tmp_path):
    bag = make_bag(
        tmp_path, {"Report.txt": b"one\n", "report.txt": b"two\n", "cafe\u0301": b"3\n", "caf\u00e9": b"4\n"}
    )
    report = validate_plain_bag(bag)
    assert report.ok, [f.line() for f in report.errors]
    assert sum(f.kind == "bagit-name-collision" for f in report.warnings) == 2


def test_byte_order_mark_in_bag_info_is_a_warning(bag):
    (bag / "bag-info.txt").write_bytes(b"\xef\xbb\xbf" + (bag / "bag-info.txt").read_bytes())
    rewrite_tagmanifests(bag)
    report = validate_plain_bag(bag)
    assert report.ok and "bagit-byte-order-mark" in kinds(report.warnings)


def test_bag_info_continuation_lines_are_joined(bag):
    info = (bag / "bag-info.txt").read_text() + "External-Description: first part\n\tsecond part\n"
    (bag / "bag-info.txt").write_text(info)
    rewrite_tagmanifests(bag)
    report = validate_plain_bag(bag)
    assert report.ok
    assert report.info["External-Description"] == ["first part second part"]


def test_tag_file_not_utf8_is_an_error(bag):
    (bag / "bag-info.txt").write_bytes((bag / "bag-info.txt").read_bytes() + b"Note: caf\xe9\n")
    rewrite_tagmanifests(bag)
    assert "bagit-tag-file-undecodable" in kinds(validate_plain_bag(bag).errors)


def test_no_payload_manifest_is_an_error(bag):
    for manifest in bag.glob("manifest-*.txt"):
        manifest.unlink()
    assert "bagit-manifest-missing" in kinds(validate_plain_bag(bag).errors)


def test_unknown_algorithm_is_named_and_not_counted_as_checked(bag):
    (bag / "manifest-blake9.txt").write_text("00  data/b.bin\n")
    report = validate_plain_bag(bag)
    assert "bagit-algorithm-unknown" in kinds(report.warnings)
    assert report.algorithms == ["sha256", "sha512"]


def test_not_a_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    assert kinds(validate_plain_bag(tmp_path / "file").errors) == {"bagit-not-a-directory"}


def test_sealbox_markers_are_never_a_plain_bag(bag):
    assert is_plain_bag(bag)
    (bag / "keys").mkdir()
    (bag / "keys/signer.pub.pem").write_text("-----BEGIN PUBLIC KEY-----\n")
    assert not is_plain_bag(bag)


def test_sealbox_field_in_bag_info_is_never_a_plain_bag(bag):
    (bag / "bag-info.txt").write_text((bag / "bag-info.txt").read_text() + "Sealbox-Format: 1\n")
    assert not is_plain_bag(bag)


def test_cli_valid_bag_says_integrity_only(cli, bag):
    proc = cli("verify", bag)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "BagIt bag — no signature, no custody: integrity only"
    assert lines[-1].startswith(f"VALID BagIt 1.0 bag {bag}: 2 payload files")
    assert "Traceback" not in proc.stderr


def test_cli_warning_case_prints_warnings_and_exits_0(cli, tmp_path):
    case = next(c for c in CASES if c.name.endswith("warning/relative-path"))
    proc = cli("verify", case.build(tmp_path / "bag"))
    assert proc.returncode == 0
    assert any(line.startswith("WARN bagit-path-noncanonical") for line in proc.stdout.splitlines())


def test_cli_invalid_bag_exits_1_with_findings(cli, bag):
    (bag / "data/notes/a.txt").write_bytes(b"ALPHA\n")
    proc = cli("verify", bag)
    assert proc.returncode == 1
    assert "FAIL bagit-payload-changed: data/notes/a.txt" in proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("NOT VALID BagIt 1.0 bag")
    assert "Traceback" not in proc.stderr


def test_cli_json(cli, bag):
    proc = cli("verify", "--json", bag)
    assert proc.returncode == 0
    out = json.loads(proc.stdout)
    assert (out["kind"], out["valid"], out["signed"], out["custody"]) == ("bagit", True, False, False)


def test_cli_refuses_bundle_options_on_a_plain_bag(cli, bag):
    proc = cli("verify", "--trust", "SHA256:" + "0" * 64, bag)
    assert proc.returncode == 2
    assert "--trust cannot be checked" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_payload_file_listed_in_tag_manifest_is_checked_with_a_warning(bag):
    digest = hashlib.sha256((bag / "data/b.bin").read_bytes()).hexdigest()
    with (bag / "tagmanifest-sha256.txt").open("a") as f:
        f.write(f"{digest}  data/b.bin\n")
    report = validate_plain_bag(bag)
    assert report.ok and "bagit-tagmanifest-lists-payload" in kinds(report.warnings)
    (bag / "data/b.bin").write_bytes(b"changed")
    assert any(
        f.kind == "bagit-payload-changed" and "tagmanifest-sha256.txt" in f.message
        for f in validate_plain_bag(bag).errors
    )


def test_cli_directory_that_is_neither_exits_2_with_one_line(cli, tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain/file.txt").write_text("x")
    proc = cli("verify", tmp_path / "plain")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def plain_original(tmp_path_factory):
    return make_bag(
        tmp_path_factory.mktemp("plain"),
        {"notes/a.txt": b"alpha\n", "b.bin": b"\x00\x01" * 600, "empty": b""},
    )


@settings(
    max_examples=int(os.environ.get("SEALBOX_FUZZ_EXAMPLES", "30")),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(sorted(MUTATIONS)), st.integers(0, 100)), min_size=1, max_size=3
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_plain_bag_mutations_never_crash_hang_or_pass(steps, seed, plain_original, tmp_path_factory):
    """The mutation harness on a plain bag: no exception, an end within seconds (a 200 GB
    sparse file included), and never valid when a byte a manifest covers changed (only the
    tag manifests themselves are covered by nothing)."""
    work = tmp_path_factory.mktemp("plainfuzz")
    bag = writable_copy(plain_original, work / "bag")
    outside = work / "outside"
    outside.mkdir()
    before = snapshot(bag)
    applied = mutate(bag, steps, random.Random(seed), outside)
    after = snapshot(bag)
    started = time.monotonic()
    report = validate_plain_bag(bag)
    assert time.monotonic() - started < 30
    covered_changed = changed(
        {k: v for k, v in before.items() if not k.startswith("tagmanifest-")},
        {k: v for k, v in after.items() if not k.startswith("tagmanifest-")},
    )
    if covered_changed:
        assert not report.ok, [(a.mutation, a.rel, a.description) for a in applied]


def _append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


def _replace(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def _line_of(path: Path, needle: str) -> str:
    return next(line for line in path.read_text().splitlines(True) if needle in line)


# (kind, error or warning, how to make a bagit-python bag show it): the kinds the suite and the
# tests above do not already produce.
BREAKS = [
    ("bagit-line-too-long", "error", lambda b: _append(b / "manifest-sha256.txt", "0" * 70_000 + "\n")),
    ("bagit-encoding-unknown", "error", lambda b: _replace(b / "bagit.txt", "UTF-8", "KLINGON-8")),
    ("bagit-version-unsupported", "error", lambda b: _replace(b / "bagit.txt", "1.0", "2.0")),
    (
        "bagit-version-unknown",
        "warning",
        lambda b: (_replace(b / "bagit.txt", "1.0", "0.98"), rewrite_tagmanifests(b)),
    ),
    ("bagit-oxum-malformed", "error", lambda b: _append(b / "bag-info.txt", "Payload-Oxum: 12\n")),
    ("bagit-info-line-malformed", "error", lambda b: _append(b / "bag-info.txt", "no colon here\n")),
    (
        "bagit-manifest-lists-directory",
        "error",
        lambda b: _append(b / "manifest-sha256.txt", "0" * 64 + "  data/notes\n"),
    ),
    (
        "bagit-manifest-line-malformed",
        "error",
        lambda b: _append(b / "manifest-sha256.txt", "xyz data/b.bin\n"),
    ),
    (
        "bagit-path-outside-payload",
        "error",
        lambda b: _append(b / "manifest-sha256.txt", "0" * 64 + "  bagit.txt\n"),
    ),
    ("bagit-payload-missing", "error", lambda b: (b / "data/b.bin").unlink()),
    ("bagit-payload-dir-missing", "error", lambda b: (b / "data").rename(b / "payload")),
    ("bagit-fetch-line-malformed", "error", lambda b: (b / "fetch.txt").write_text("just one field\n")),
    (
        "bagit-tagmanifests-differ",
        "warning",
        lambda b: _replace(
            b / "tagmanifest-sha512.txt", _line_of(b / "tagmanifest-sha512.txt", "bag-info"), ""
        ),
    ),
    ("bagit-hard-link", "warning", lambda b: os.link(b / "data/b.bin", b.parent / "second-name")),
]


@pytest.mark.parametrize(("kind", "level", "brk"), BREAKS, ids=[k for k, _, _ in BREAKS])
def test_each_remaining_kind_is_produced(kind, level, brk, bag):
    brk(bag)
    report = validate_plain_bag(bag)
    found = report.errors if level == "error" else report.warnings
    assert kind in kinds(found), [f.line() for f in report.errors + report.warnings]
    if level == "warning":
        assert report.ok, [f.line() for f in report.errors]


def test_manifest_entry_cap_is_named(bag, monkeypatch):
    import manifest.handover.plainbag as plainbag

    monkeypatch.setattr(plainbag, "MAX_ENTRIES", 1)
    problems = [f for f in validate_plain_bag(bag).errors if f.kind == "bagit-manifest-too-long"]
    assert problems and "more than 1 entries" in problems[0].message
