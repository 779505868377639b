"""Bundle verification (SPEC §6): the bundle is parsed once into a `BundleModel`, then every rule
of the registry (`manifest.verify.rules.RULES`) reads it and adds its findings to one report.

The verdict: VERIFIED only when every byte a signature, manifest or custody link covers is intact,
every custody event is signed by a trusted key, and the bundle holds nothing but regular files and
directories. What the bundle alone cannot decide is a note, never a pass.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

from manifest import bagit
from manifest.errors import NotABundleError, WorkerLost
from manifest.findings import Finding, FindingKind
from manifest.keys import KeyStore
from manifest.parallel import start_process
from manifest.timefmt import now_rfc3339
from manifest.verify.index import attach_items, index_items, open_index
from manifest.verify.model import (
    INCOMPLETE,
    ITEMS,
    READ_AT_PARSE,
    SMALL_CAP,
    BundleModel,
    read_regular,
    walk_tags,
)
from manifest.verify.report import VerifyReport
from manifest.verify.rules import RULES

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["INCOMPLETE", "BundleModel", "VerifyReport", "verify_bundle"]


def verify_bundle(
    path: Path,
    trusted: set[str] | None = None,
    *,
    store: KeyStore | None = None,
    workers: int | None = None,
    tsa_ca: Path | None = None,
    previous: Path | None = None,
) -> VerifyReport:
    """Check a bundle against every rule of SPEC §6 and return all findings; with `previous`,
    also that the bundle follows up that one (its Sealbox-Previous-Bundle)."""
    if not os.path.lexists(path):
        raise NotABundleError(f"{path} does not exist", "give the bundle directory")
    if not path.is_dir():
        raise NotABundleError(f"{path} is not a directory", "give the bundle directory")
    if not os.path.lexists(path / "bagit.txt") and not os.path.lexists(path / ITEMS):
        raise NotABundleError(f"{path} is not a sealbox bundle (no bagit.txt)")
    store = store or KeyStore.default()
    trusted_fps = frozenset(
        set(trusted or ()) | store.trusted_fingerprints() | {k.identity.fingerprint for k in store.own_keys()}
    )
    report = VerifyReport(path, now_rfc3339())
    bundle = load_model(path, trusted_fps, workers=workers, tsa_ca=tsa_ca, previous=previous)
    try:
        report.info = dict(bundle.info)
        report.findings.extend(bundle.parse_findings)
        for rule in RULES:
            rule.check(bundle, report)
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
    """Parse the bundle once: list it (never following a link), read the small tag files, and
    index data/, the manifest and items.jsonl on disk. Sizes are checked before anything is read."""
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
    index = open_index()
    apart: Any = None
    try:
        data = entries.get("data")
        if data is not None and data.kind == "directory":
            index.add_listing(path)
        bundle = BundleModel(
            path=path,
            entries=entries,
            small=small,
            info=info,
            payload=index,
            trusted=trusted,
            workers=workers,
            tsa_ca=tsa_ca,
            previous=previous,
        )
        read(bagit.TAGMANIFEST, bundle.cap(bagit.TAGMANIFEST)[0])
        # items.jsonl is indexed by a worker process while this one indexes the manifest.
        items = path / ITEMS if bundle.within_cap(ITEMS) else None
        if (workers or os.cpu_count() or 1) > 1 and items is not None:
            apart = start_process(index_items, index.tmp, items)
        else:
            index_items(index.tmp, items)
        if bundle.within_cap(bagit.MANIFEST):
            try:
                index.add_manifest(path / bagit.MANIFEST)
            except OSError as exc:
                why = (exc.strerror or str(exc)).lower()
                problems.append(
                    Finding(FindingKind.TAG_FILE_MISSING, bagit.MANIFEST, f"cannot be read: {why}")
                )
        index.db.execute("COMMIT")
        if apart is not None:
            apart.join()
            if apart.exitcode != 0:
                raise WorkerLost(
                    f"the worker indexing {ITEMS} ended with status {apart.exitcode} (out of memory?)",
                    "run the command again",
                )
            apart = None
        attach_items(index)
    except BaseException:
        if apart is not None and apart.is_alive():
            apart.terminate()
            apart.join()
        index.close()
        raise
    return dataclasses.replace(bundle, parse_findings=tuple(problems))
