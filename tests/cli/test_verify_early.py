"""The payload check started ahead (workers hashing while the main process reads the rest of the
bundle) reports exactly what verify reports without it: the same findings in the same order, the
same notes and counts, on the untouched bundle and on every mutation of it."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import pytest

from manifest.signing.keys import KeyStore
from manifest.verify import stream as stream_module
from manifest.verify import verify_bundle
from manifest.verify.stream import start_stream
from tests.support.builders import sealed_bundle
from tests.support.mutations import MUTATIONS, entries, mutate, mutation_runs, writable_copy

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    """A real sealed bundle of 60 files in a few directories, with a custody event."""
    files = {f"dir{i % 4}/file{i:03d}.txt": f"line {i}\n" * (i % 9 + 1) for i in range(60)}
    files["empty.txt"] = ""
    events = (("--event", "note", "--reason", "seal checked"),)
    with sealed_bundle(tmp_path_factory.mktemp("early"), files, events) as pair:
        yield pair


def _outcome(bundle: Path, store: KeyStore, *, early: bool) -> tuple[Any, ...]:
    """Everything the report says, with the payload check started ahead or run in its turn."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stream_module, "EARLY_FROM", 0 if early else 1 << 62)
        run = start_stream(bundle, 2)
        try:
            report = verify_bundle(bundle, store=store, workers=2, stream=run)
        except Exception as exc:  # a refusal must be the same refusal
            return ("raised", type(exc).__name__, str(exc))
    return (
        report.ok,
        [(f.kind, f.where, f.message, f.expected, f.found) for f in report.findings],
        report.notes,
        (report.payload_files, report.payload_bytes, report.items, report.custody_events),
    )


def test_the_untouched_bundle_is_verified_either_way(sealed, tmp_path):
    cli, bundle = sealed
    copy = writable_copy(bundle, tmp_path / bundle.name)
    store = KeyStore(cli.home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stream_module, "EARLY_FROM", 0)
        run = start_stream(copy, 2)
        assert run is not None
        assert run.result() is not None  # the streamed check answered: it was in step
    ahead = _outcome(copy, store, early=True)
    assert ahead[0] is True, ahead
    assert ahead == _outcome(copy, store, early=False)


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_mutation_of_the_payload_and_its_lists_is_reported_alike(mutation, sealed, tmp_path):
    cli, bundle = sealed
    store = KeyStore(cli.home)
    names = entries(bundle)
    payload = [i for i, rel in enumerate(names) if rel.startswith("data/")]
    lists = [names.index(rel) for rel in ("manifest-sha256.txt", "metadata/items.jsonl", "bag-info.txt")]
    tried = 0
    for index in payload[:: max(1, len(payload) // 10)] + lists:
        work = tmp_path / str(index)
        copy = writable_copy(bundle, work / bundle.name)
        (work / "outside").mkdir()
        if not mutate(copy, [(mutation, index)], random.Random(index), work / "outside"):
            continue
        tried += 1
        assert _outcome(copy, store, early=True) == _outcome(copy, store, early=False), names[index]
    assert tried > 0


@mutation_runs(25)
def test_random_mutations_are_reported_alike(steps, seed, sealed, tmp_path_factory):
    cli, bundle = sealed
    work = tmp_path_factory.mktemp("early-fuzz")
    copy = writable_copy(bundle, work / bundle.name)
    (work / "outside").mkdir()
    mutate(copy, steps, random.Random(seed), work / "outside")
    store = KeyStore(cli.home)
    assert _outcome(copy, store, early=True) == _outcome(copy, store, early=False)


def test_a_run_started_ahead_and_never_taken_leaves_no_worker(sealed):
    import psutil

    _cli, bundle = sealed
    before = {p.pid for p in psutil.Process().children()}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stream_module, "EARLY_FROM", 0)
        run = start_stream(bundle, 2)
    assert run is not None
    children = [p for p in psutil.Process().children() if p.pid not in before]
    assert len(children) == 2
    run.cancel()
    run.cancel()  # idempotent
    _gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive
