"""Bundle verification (SPEC §6): the bundle is parsed once into a `BundleModel`, then every rule
of the registry (`manifest.verify.rules.RULES`) reads it and adds its findings to one report.

The verdict: VERIFIED only when every byte a signature, manifest or custody link covers is intact,
every custody event is signed by a trusted key, and the bundle holds nothing but regular files and
directories. What the bundle alone cannot decide is a note, never a pass.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from manifest.errors import NotABundleError
from manifest.findings import Finding, FindingKind
from manifest.format import bagit
from manifest.format.timefmt import now_rfc3339
from manifest.verify.model import (
    INCOMPLETE,
    ITEMS,
    READ_AT_PARSE,
    SMALL_CAP,
    BundleModel,
    Listing,
    PayloadSource,
    list_data,
    read_regular,
    walk_tags,
)
from manifest.verify.report import VerifyReport

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.signing.keys import KeyStore
    from manifest.verify.stream import StreamRun

__all__ = ["INCOMPLETE", "BundleModel", "VerifyReport", "verify_bundle"]


def verify_bundle(
    path: Path,
    trusted: set[str] | None = None,
    *,
    store: KeyStore | None = None,
    workers: int | None = None,
    tsa_ca: Path | None = None,
    previous: Path | None = None,
    receipts: tuple[Path, ...] = (),
    stream: StreamRun | None = None,
) -> VerifyReport:
    """Check a bundle against every rule of SPEC §6 and return all findings; with `previous`,
    also that the bundle follows up that one (its Sealbox-Previous-Bundle). The payload check
    starts first, in worker processes, while the rest is read and checked; `stream` is one the
    caller started already (`manifest.verify.stream.start_stream`), ended here whatever happens."""
    run = stream
    try:
        if not os.path.lexists(path):
            raise NotABundleError(f"{path} does not exist", "give the bundle directory")
        if not path.is_dir():
            raise NotABundleError(f"{path} is not a directory", "give the bundle directory")
        if not os.path.lexists(path / "bagit.txt") and not os.path.lexists(path / ITEMS):
            raise NotABundleError(f"{path} is not a sealbox bundle (no bagit.txt)")
        if run is None:
            from manifest.verify.stream import start_stream

            run = start_stream(path, workers)
        return _check(path, trusted, store, workers, tsa_ca, previous, receipts, run)
    finally:
        if run is not None:
            run.cancel()  # taken by the payload rule (then this does nothing), or not needed


def _check(
    path: Path,
    trusted: set[str] | None,
    store: KeyStore | None,
    workers: int | None,
    tsa_ca: Path | None,
    previous: Path | None,
    receipts: tuple[Path, ...],
    run: StreamRun | None,
) -> VerifyReport:
    from manifest.signing.keys import KeyStore
    from manifest.verify.rules import RULES

    store = store or KeyStore.default()
    trusted_fps = frozenset(
        set(trusted or ()) | store.trusted_fingerprints() | {k.identity.fingerprint for k in store.own_keys()}
    )
    report = VerifyReport(path, now_rfc3339())
    bundle = load_model(path, trusted_fps, workers=workers, tsa_ca=tsa_ca, previous=previous)
    bundle = dataclasses.replace(bundle, store=store, receipts=tuple(receipts), stream=run)
    try:
        report.info = dict(bundle.info)
        report.findings.extend(bundle.parse_findings)
        for rule in RULES:
            rule.check(bundle, report)
        # Trusted entries that were skipped (malformed, unsafe): said, never silently dropped.
        report.notes.extend(w.line() for w in store.warnings)
    finally:
        bundle.payload.close()
    return report


def load_model(
    path: Path,
    trusted: frozenset[str],
    *,
    workers: int | None = None,
    tsa_ca: Path | None = None,
    previous: Path | None = None,
) -> BundleModel:
    """Parse the bundle once: list it (never following a link), read the small tag files and
    count data/. Sizes are checked before anything is read; what grows with the payload is
    streamed by the rules (`PayloadSource`)."""
    entries = walk_tags(path)
    small: dict[str, bytes] = {}
    problems: list[Finding] = []

    def read(rel: str, cap: int) -> None:
        entry = entries.get(rel)
        if entry is None or entry.kind != "file" or entry.size > cap:
            return  # the rules name what is missing, not a file, or too large
        try:
            small[rel] = read_regular(path, entry, cap)
        except OSError as exc:
            why = (exc.strerror or str(exc)).lower()
            problems.append(Finding(FindingKind.TAG_FILE_MISSING, rel, f"cannot be read: {why}"))

    for rel in READ_AT_PARSE:
        read(rel, SMALL_CAP)
    info = bagit.parse_bag_info(small.get("bag-info.txt", b""))
    data = entries.get("data")
    listing = list_data(path) if data is not None and data.kind == "directory" else Listing()
    bundle = BundleModel(
        path=path,
        entries=entries,
        small=small,
        info=info,
        payload=PayloadSource(listing),
        trusted=trusted,
        workers=workers,
        tsa_ca=tsa_ca,
        previous=previous,
    )
    read(bagit.TAGMANIFEST, bundle.cap(bagit.TAGMANIFEST)[0])
    return dataclasses.replace(bundle, parse_findings=tuple(problems))
