"""Resuming an interrupted collection (SPEC §1: a `.incomplete` bundle "can be resumed").

What an interrupted run left is checked before anything is added: the custody chain must be
intact and started with the same key, every copy that items.jsonl records must still hash to its
recorded digest. Then items.jsonl is cut back to its last whole line (a run killed mid-write
leaves a torn one), copies that no item records are removed (they were in flight), and the
payload manifest and views are written again from the items kept. Each of these steps is
logged and counted in a custody `note`, so the resumed bundle says what happened to it.

A run that had finished collecting (`collection-completed` is in custody) and stopped while
sealing is sealed without collecting anything again. One whose `sealed` event is already in
custody had fixed everything the seal covers: the manifest it names and every recorded copy are
checked, the files that follow that event (keys, bagit.txt, bag-info.txt, the tagmanifest and its
signatures) are written again from it, and the bundle is renamed; custody stays as it was.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manifest.bundle import AFTER_SEALED, BundleWriter, WriterState, lock_bundle_dir
from manifest.errors import BundleError, UsageError
from manifest.format import bagit
from manifest.format.bagit import CONTINUATION, INCOMPLETE
from manifest.format.items import iter_items, original_path, parse_item
from manifest.format.pathenc import PAYLOAD_FILE_DIRS
from manifest.hashing import check_batch, sha256_file
from manifest.osio.flags import FS_APPEND_FL, FS_IMMUTABLE_FL, remove_flags
from manifest.signing.custody import CUSTODY, verify_chain

if TYPE_CHECKING:
    from manifest.signing.keys import Signer

_CHUNK = 4096


@dataclass
class Kept:
    """What an interrupted run had already recorded, and what was cleaned up."""

    done: set[bytes] = field(default_factory=set)  # original paths already acquired
    links: dict[tuple[int, int], int] = field(default_factory=dict)  # (device, inode) -> first item
    copies: dict[str, str] = field(default_factory=dict)  # stored path -> recorded sha256
    kept_items: int = 0
    torn_bytes: int = 0  # a torn last line cut from items.jsonl
    whole_bytes: int = 0  # items.jsonl up to its last whole line
    removed: list[str] = field(default_factory=list)  # copies no item recorded


@dataclass
class ResumePoint(Kept):
    """An interrupted bundle, reopened for the rest of its collection."""

    writer: BundleWriter | None = None
    sources: list[str] = field(default_factory=list)  # as collection-started recorded them
    volatile_done: bool = False
    completed: bool = False  # the run had finished collecting and stopped while sealing
    sealed: dict[str, Any] | None = None  # the `sealed` event's details: only the seal's files are left

    def details(self) -> dict[str, Any]:
        """What the custody note and the acquisition log say about the resumption."""
        return {
            "resumed": True,
            "stage": "sealing" if self.completed else "collecting",
            "items_kept": self.kept_items,
            "torn_line_bytes_cut": self.torn_bytes,
            "unrecorded_copies_removed": len(self.removed),
        }

    @property
    def reason(self) -> str:
        """The custody note's reason."""
        stage = "sealing" if self.completed else "collection"
        return f"{stage} resumed after an interruption"


def _check_started(path: Path) -> None:
    """A run killed before its first custody line collected nothing: say what to do instead."""
    try:
        head = (path / CUSTODY).read_bytes()[: 1 << 16]
    except FileNotFoundError:
        head = b""
    except OSError as exc:
        raise BundleError(f"cannot resume {path}: cannot read {CUSTODY}: {exc.strerror}") from None
    if b"\n" not in head:
        raise UsageError(
            f"cannot resume {path}: it was stopped before its collection started, nothing in it is evidence",
            f"remove it (rm -r '{path}') and run the same command again without --resume",
        )


def _started_event(path: Path, signer: Signer) -> tuple[dict[str, Any], list[dict[str, Any]], bytes]:
    _check_started(path)
    findings, lines = verify_chain(path)
    # continuation.jsonl is one of the files the seal writes: a run killed while sealing may
    # not have made it yet, and resuming writes it.
    findings = [f for f in findings if f.kind != "custody-continuation-missing"]
    if findings:
        first = findings[0]
        raise BundleError(
            f"cannot resume {path}: custody log {first.where}: {first.message}",
            "the interrupted bundle cannot be trusted; start a new collection",
        )
    events = [line.event for line in lines if line.file == CUSTODY and line.event]
    if not events or events[0].get("event") != "collection-started":
        raise BundleError(f"cannot resume {path}: custody.jsonl does not start with collection-started")
    if any(line.file == CONTINUATION for line in lines) or any(
        ev.get("event") == "sealed" for ev in events[:-1]
    ):
        raise BundleError(
            f"cannot resume {path}: custody holds events after its seal",
            "the interrupted bundle cannot be trusted; start a new collection",
        )
    key = (events[0].get("actor") or {}).get("key")
    if key != signer.fingerprint:
        raise UsageError(f"{path} was started with key {key}", "resume it with that key (--key)")
    last_raw = [line.raw for line in lines if line.file == CUSTODY][-1]
    return events[0], events, last_raw


def _read_items(path: Path, point: Kept, finished: bool) -> None:
    """Whole, parseable lines of items.jsonl, and the size of a torn last line (cut later). A
    `finished` items.jsonl (the run had completed collecting) can have no torn line."""
    stored = point.copies
    good_end = 0
    last_id = 0
    with (path / "metadata/items.jsonl").open("rb") as fh:
        for raw in fh:
            try:
                if not raw.endswith(b"\n"):
                    raise ValueError("torn")
                item = parse_item(raw)
                item_id = int(item["id"])
            except (ValueError, KeyError, TypeError):
                if fh.read(1) or finished:  # not an interruption mid-write: refuse
                    raise BundleError(
                        f"cannot resume {path}: metadata/items.jsonl line {point.kept_items + 1} is damaged",
                        "the interrupted bundle cannot be trusted; start a new collection",
                    ) from None
                point.torn_bytes = len(raw)
                break
            if item_id <= last_id:
                raise BundleError(f"cannot resume {path}: metadata/items.jsonl is out of order")
            last_id = item_id
            good_end += len(raw)
            point.kept_items += 1
            if item.get("stored_as"):
                rel = str(item["stored_as"])
                if not rel.startswith("data/") or "/../" in f"/{rel}/":
                    raise BundleError(f"cannot resume {path}: item {item_id} names a copy outside data/")
                stored[rel] = str(item.get("sha256"))
            if item.get("kind") == "volatile":
                continue
            point.done.add(original_path(item))
            if item.get("kind") == "file" and (item.get("nlink") or 0) > 1:
                point.links.setdefault((item["device"], item["inode"]), item_id)
    point.whole_bytes = good_end


def _check_copies(path: Path, recorded: dict[str, str]) -> None:
    entries = sorted(recorded.items())
    base = str(path) + "/"
    for start in range(0, len(entries), _CHUNK):
        result = check_batch(base, entries[start : start + _CHUNK])
        problem = [(rel, "is missing") for rel in result.missing] + [
            (p.rel, p.detail if p.kind == "unreadable" else "differs from its recorded sha256")
            for p in result.problems
        ]
        if problem:
            rel, why = problem[0]
            raise BundleError(
                f"cannot resume {path}: the copy {rel} {why}",
                "the interrupted bundle cannot be trusted; start a new collection",
            )


def _remove_unrecorded(path: Path, recorded: dict[str, str]) -> list[str]:
    """Copies written by the interrupted run that no item records (in flight when it stopped)."""
    removed: list[str] = []
    for top in (*PAYLOAD_FILE_DIRS, "data/volatile"):
        for root, _dirs, files in os.walk(path / top):
            for name in files:
                full = Path(root) / name
                rel = full.relative_to(path).as_posix()
                if rel in recorded:
                    continue
                with contextlib.suppress(OSError):  # a symlink, or no flags: unlink decides
                    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
                    try:
                        remove_flags(fd, FS_IMMUTABLE_FL)
                    finally:
                        os.close(fd)
                full.unlink()
                removed.append(rel)
    return removed


def resume(
    path: Path,
    signer: Signer,
    *,
    organization: str = "",
    contact: str = "",
    root: Path | None = None,
    immutable: bool | None = None,
    sources: list[str] | None = None,
    case: str | None = None,
    previous: str | None = None,
) -> ResumePoint:
    """Check and reopen an interrupted bundle; the caller acquires what is missing and seals.
    `sources` (as collection-started records them) must be the interrupted run's."""
    if not path.is_dir() or not path.name.endswith(INCOMPLETE):
        raise UsageError(
            f"{path} is not an interrupted bundle (no directory ending in {INCOMPLETE})",
            "give the BUNDLE.incomplete directory that the interrupted run named",
        )
    try:
        return _resume(path, signer, organization, contact, root, immutable, sources, case, previous)
    except OSError as exc:
        raise BundleError(
            f"cannot resume {path}: {exc.strerror or exc} ({exc.filename or path})",
            "fix that and run the same command again",
        ) from exc


def _resume(
    path: Path,
    signer: Signer,
    organization: str,
    contact: str,
    root: Path | None,
    immutable: bool | None,
    sources: list[str] | None,
    case: str | None,
    previous: str | None,
) -> ResumePoint:
    lock = lock_bundle_dir(path)  # refused while a collection is still writing it
    try:
        point, events, last_raw = _trusted_point(path, signer, sources, case, previous)
        state = WriterState.resumed(
            path,
            events,
            last_raw,
            lock=lock,
            signer=signer,
            organization=organization,
            contact=contact,
            root=root,
            immutable=immutable,
        )
        # Checked and trusted: only now is anything changed.
        if point.sealed is not None:
            removed = _clear_after_sealed(path)
            point.writer = BundleWriter(state)
            point.writer.log.warning("seal-files-rewritten", removed=removed)
            return point
        if point.torn_bytes:
            os.truncate(path / "metadata/items.jsonl", point.whole_bytes)
        point.removed = _remove_unrecorded(path, point.copies)
        writer = BundleWriter(state)
    except BaseException:
        os.close(lock)
        raise
    chunk: list[dict[str, Any]] = []
    for item in iter_items(path / "metadata/items.jsonl"):
        chunk.append(item)
        if len(chunk) >= _CHUNK:
            writer.adopt_items(chunk)
            chunk = []
    writer.adopt_items(chunk)
    point.writer = writer
    for rel in point.removed:
        writer.log.warning("unrecorded-copy-removed", path=rel)
    if point.torn_bytes:
        writer.log.warning("torn-item-line-cut", bytes=point.torn_bytes)
    writer.log.info("collection-resumed", **point.details())
    return point


def _trusted_point(
    path: Path, signer: Signer, sources: list[str] | None, case: str | None, previous: str | None
) -> tuple[ResumePoint, list[dict[str, Any]], bytes]:
    """Every check, before anything is changed: the chain, the key, the case, the sources, the
    previous bundle it follows up, the items and each recorded copy."""
    started, events, last_raw = _started_event(path, signer)
    details = started.get("details") or {}
    if case is not None and case != started.get("case"):
        raise UsageError(f"{path} belongs to case {started.get('case')}, not {case}", "give the same --case")
    point = ResumePoint(sources=list(details.get("sources") or []))
    if sources is not None and sources[:1000] != point.sources:
        shown = ", ".join(point.sources[:3]) + (", ..." if len(point.sources) > 3 else "")
        raise UsageError(
            f"{path} collected other sources ({shown})",
            "resume with the same paths, profile and --root as the interrupted run",
        )
    follows = (details.get("previous") or {}).get("tagmanifest_sha256")
    if follows != previous:
        raise UsageError(
            f"{path} was started {'with --previous' if follows else 'without --previous'}",
            "resume with the same --previous as the interrupted run",
        )
    point.volatile_done = any(ev.get("event") == "volatile-captured" for ev in events)
    point.completed = any(ev.get("event") == "collection-completed" for ev in events)
    if events[-1].get("event") == "sealed":
        point.sealed = _check_sealed(path, events[-1])
    _read_items(path, point, point.completed)
    _check_copies(path, point.copies)
    return point, events, last_raw


def _check_sealed(path: Path, sealed: dict[str, Any]) -> dict[str, Any]:
    """The `sealed` event's details, once the manifest it names is the one in the bundle."""
    details = sealed.get("details")
    if not isinstance(details, dict) or details.get("bundle_name") != path.name[: -len(INCOMPLETE)]:
        raise BundleError(f"cannot resume {path}: its sealed event names another bundle")
    try:
        found = sha256_file(path / bagit.MANIFEST)
    except OSError as exc:
        raise BundleError(f"cannot resume {path}: cannot read {bagit.MANIFEST}: {exc.strerror}") from None
    if found != details.get("manifest_sha256"):
        raise BundleError(
            f"cannot resume {path}: {bagit.MANIFEST} is not the one its sealed event names",
            "the interrupted bundle cannot be trusted; start a new collection",
        )
    return details


def _clear_after_sealed(path: Path) -> list[str]:
    """Remove what the seal wrote after its `sealed` event (maybe torn, maybe locked down)."""
    for rel in ("", "keys", "custody", "metadata"):
        (path / rel).chmod(0o755)
    removed: list[str] = []
    for rel in [*bagit.tag_files(path), *AFTER_SEALED]:
        full = path / rel
        if not full.is_file() or full.is_symlink():
            continue
        with contextlib.suppress(OSError):  # no flags where the filesystem has none
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                remove_flags(fd, FS_IMMUTABLE_FL | FS_APPEND_FL)
            finally:
                os.close(fd)
        if rel in AFTER_SEALED:
            full.unlink()
            removed.append(rel)
    return removed
