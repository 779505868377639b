"""Mutation harness: a real sealed bundle with continuation events, mutated every way on every
file and directory; verify must never say ok when a covered byte changed, never crash, and
always end in time (the rule of issue 13). Long runs: scripts/fuzz-verify --minutes N."""

from __future__ import annotations

import fnmatch
import os
import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from manifest.keys import KeyStore
from tests.builders import collect, make_key
from tests.mutations import (
    CONTENT_GAPS,
    KNOWN_GAPS,
    MUTATIONS,
    changed,
    custody_receipts,
    entries,
    known_gap,
    mutate,
    snapshot,
    verify_cli,
    verify_in_process,
    violation,
    writable_copy,
)

# In CI a fast profile; SEALBOX_FUZZ_EXAMPLES raises it for a longer local run.
EXAMPLES = int(os.environ.get("SEALBOX_FUZZ_EXAMPLES", "30"))


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    """A bundle collected by the real CLI with a real key, then two `custody add` events."""
    from tests.conftest import Cli, clear_flags

    base = tmp_path_factory.mktemp("mutation")
    cli = Cli(base / "home")
    make_key(cli)
    src = base / "src"
    (src / "logs").mkdir(parents=True)
    (src / "logs/auth.log").write_text("Nov 24 sshd[1]: Accepted password for root\n" * 20)
    (src / "mail.mbox").write_text("From a@b Tue Nov 24 00:00:00 2026\nSubject: x\n\nbody\n")
    (src / "empty.txt").write_bytes(b"")
    out = base / "out"
    out.mkdir()
    bundle = collect(cli, out, src)
    cli(
        "custody",
        "add",
        bundle,
        "--event",
        "transferred",
        "--reason",
        "to the lab",
        "--to",
        "Lab",
        check=True,
    )
    cli("custody", "add", bundle, "--event", "note", "--reason", "seal checked", check=True)
    yield cli, bundle
    clear_flags(out)


@pytest.fixture(scope="module")
def receipts(sealed):
    """The receipts of the original's custody log, once the key store keeps them."""
    cli, bundle = sealed
    return custody_receipts(cli.home, bundle)


@pytest.fixture
def fresh(sealed, tmp_path):
    """A mutable copy of the sealed bundle and a directory outside it (for link targets)."""
    cli, bundle = sealed
    outside = tmp_path / "outside"
    outside.mkdir()
    return cli, writable_copy(bundle, tmp_path / bundle.name), outside


def test_untouched_copy_verifies(fresh, receipts):
    cli, bundle, _outside = fresh
    assert (bundle / "custody/continuation.jsonl").read_text().count("\n") == 2
    outcome = verify_in_process(bundle, KeyStore(cli.home), receipts)
    assert outcome.ok, outcome.kinds
    assert verify_cli(bundle, cli.home, receipts=receipts).ok


@pytest.mark.parametrize("mutation", sorted(m for m in MUTATIONS if KNOWN_GAPS.get(m, ((),))[0] != ("*",)))
def test_mutation_on_every_entry(mutation, sealed, receipts, tmp_path):
    """Each mutation class on each file and directory of the bundle, one at a time, except the
    known gaps (tested below): every outcome must keep the rule."""
    cli, bundle = sealed
    store = KeyStore(cli.home)
    problems, tried = [], 0
    for index, rel in enumerate(entries(bundle)):
        if known_gap(mutation, rel):
            continue
        work = tmp_path / str(index)
        copy = writable_copy(bundle, work / bundle.name)
        outside = work / "outside"
        outside.mkdir()
        before = snapshot(copy)
        applied = mutate(copy, [(mutation, index)], random.Random(index), outside)
        if not applied:
            continue
        tried += 1
        if known_gap(mutation, rel, copy):
            continue
        outcome = verify_in_process(copy, store, receipts)
        problem = violation(changed(before, snapshot(copy)), outcome)
        if problem:
            problems.append(f"{mutation} {rel} ({applied[0].description}): {problem}")
    assert tried > 0
    assert not problems, "\n".join(problems)


def _gap_cases() -> list[tuple[str, str]]:
    return [(m, pattern) for m, (patterns, _branch) in sorted(KNOWN_GAPS.items()) for pattern in patterns]


@pytest.mark.parametrize(("mutation", "pattern"), _gap_cases(), ids=lambda v: str(v))
def test_known_gap_until_other_branches_land(mutation, pattern, fresh, receipts, request):
    """Mutations today's verify misses (tests/mutations.py KNOWN_GAPS names the branch that
    closes each), on the first file the pattern names: expected to fail here until that branch
    is merged, then to pass."""
    cli, bundle, outside = fresh
    names = entries(bundle)
    rel = next(r for r in names if fnmatch.fnmatchcase(r, pattern) and (bundle / r).is_file())
    request.applymarker(pytest.mark.xfail(reason=f"known gap, closed by {known_gap(mutation, rel)}"))
    before = snapshot(bundle)
    assert mutate(bundle, [(mutation, names.index(rel))], random.Random(0), outside)
    if mutation == "sparse-grow":  # today hashed to the end: only a subprocess can be cut off
        outcome = verify_cli(bundle, cli.home, timeout=10, receipts=receipts)
    else:
        outcome = verify_in_process(bundle, KeyStore(cli.home), receipts)
    assert violation(changed(before, snapshot(bundle)), outcome) is None


@pytest.mark.parametrize(
    ("gap", "rel"), [(g, f) for g in CONTENT_GAPS for f in g.files], ids=lambda v: getattr(v, "name", v)
)
def test_known_content_gap_until_other_branches_land(gap, rel, fresh, receipts, request):
    """A byte today's verify crashes on (tests/mutations.py CONTENT_GAPS), inserted into each
    file it concerns: expected to fail here until the branch that closes it is merged."""
    cli, bundle, _outside = fresh
    request.applymarker(pytest.mark.xfail(reason=f"known gap, closed by {gap.branch}"))
    path = bundle / rel
    data = path.read_bytes()
    path.write_bytes(data[: gap.offset] + gap.example + data[gap.offset :])
    outcome = verify_in_process(bundle, KeyStore(cli.home), receipts)
    assert violation(True, outcome) is None


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(sorted(MUTATIONS)), st.integers(0, 1000)), min_size=1, max_size=3
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_mutations_keep_the_rule(steps, seed, sealed, receipts, tmp_path_factory):
    """Random sequences of mutations (a flip, then a truncation of another file, ...)."""
    cli, bundle = sealed
    work = tmp_path_factory.mktemp("fuzz")
    copy = writable_copy(bundle, work / bundle.name)
    outside = work / "outside"
    outside.mkdir()
    before = snapshot(copy)
    applied = mutate(copy, steps, random.Random(seed), outside)
    assume(applied and not any(known_gap(a.mutation, a.rel, copy) for a in applied))
    outcome = verify_in_process(copy, KeyStore(cli.home), receipts)
    problem = violation(changed(before, snapshot(copy)), outcome)
    assert problem is None, f"{[(a.mutation, a.rel, a.description) for a in applied]}: {problem}"


@pytest.mark.parametrize(
    ("mutation", "target"),
    [("flip", "auth.log"), ("fifo", "bag-info.txt"), ("to-dir", "manifest-sha256.txt")],
    ids=lambda v: str(v),
)
def test_cli_sample_ends_with_findings_and_no_traceback(mutation, target, fresh, receipts):
    cli, bundle, outside = fresh
    names = entries(bundle)
    index = next(i for i, r in enumerate(names) if r.endswith(target))
    assert mutate(bundle, [(mutation, index)], random.Random(1), outside)
    outcome = verify_cli(bundle, cli.home, receipts=receipts)
    assert outcome.ok is False and not outcome.crashed and not outcome.timed_out, outcome.detail
    assert outcome.kinds
