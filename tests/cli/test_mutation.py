"""Mutation harness: a real sealed bundle with continuation events, mutated every way on every
file and directory; verify must never say ok when a covered byte changed, never crash, and
always end in time (the rule of issue 13). Long runs: scripts/fuzz-verify --minutes N."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import assume

from manifest.signing.keys import KeyStore
from tests.support.builders import sealed_bundle
from tests.support.mutations import (
    MUTATIONS,
    changed,
    custody_receipts,
    entries,
    mutate,
    mutation_runs,
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
    files = {
        "logs/auth.log": "Nov 24 sshd[1]: Accepted password for root\n" * 20,
        "mail.mbox": "From a@b Tue Nov 24 00:00:00 2026\nSubject: x\n\nbody\n",
        "empty.txt": "",
    }
    events = (
        ("--event", "transferred", "--reason", "to the lab", "--to", "Lab"),
        ("--event", "note", "--reason", "seal checked"),
    )
    with sealed_bundle(tmp_path_factory.mktemp("mutation"), files, events) as pair:
        yield pair


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


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_mutation_on_every_entry(mutation, sealed, receipts, tmp_path):
    """Each mutation class on each file and directory of the bundle, one at a time: every outcome
    must keep the rule."""
    cli, bundle = sealed
    store = KeyStore(cli.home)
    problems, tried = [], 0
    for index, rel in enumerate(entries(bundle)):
        work = tmp_path / str(index)
        copy = writable_copy(bundle, work / bundle.name)
        outside = work / "outside"
        outside.mkdir()
        before = snapshot(copy)
        applied = mutate(copy, [(mutation, index)], random.Random(index), outside)
        if not applied:
            continue
        tried += 1
        outcome = verify_in_process(copy, store, receipts)
        problem = violation(changed(before, snapshot(copy)), outcome)
        if problem:
            problems.append(f"{mutation} {rel} ({applied[0].description}): {problem}")
    assert tried > 0
    assert not problems, "\n".join(problems)


# Bytes that crashed verify or made it say VERIFIED where `minisign -Vm` does not, before
# verify parsed every file totally: each now a finding (file, bytes inserted, at offset).
ONCE_BROKEN = [
    ("keys/signer.minisign.pub", b"\xa9", 20),
    ("tagmanifest-sha256.txt.minisig", b"\xa9", 20),
    ("manifest-sha256.txt", b"\0", 70),
    ("tagmanifest-sha256.txt.minisig", b"!", 80),
]


@pytest.mark.parametrize(("rel", "inserted", "offset"), ONCE_BROKEN, ids=lambda v: repr(v))
def test_bytes_that_once_broke_verify_are_findings(rel, inserted, offset, fresh, receipts):
    cli, bundle, _outside = fresh
    path = bundle / rel
    data = path.read_bytes()
    path.write_bytes(data[:offset] + inserted + data[offset:])
    outcome = verify_in_process(bundle, KeyStore(cli.home), receipts)
    assert violation(True, outcome) is None


@mutation_runs(EXAMPLES)
def test_random_mutations_keep_the_rule(steps, seed, sealed, receipts, tmp_path_factory):
    """Random sequences of mutations (a flip, then a truncation of another file, ...)."""
    cli, bundle = sealed
    work = tmp_path_factory.mktemp("fuzz")
    copy = writable_copy(bundle, work / bundle.name)
    outside = work / "outside"
    outside.mkdir()
    before = snapshot(copy)
    applied = mutate(copy, steps, random.Random(seed), outside)
    assume(applied)
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
