"""One collection run, in the order of volatility: volatile state, files, post-processing, seal."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from collectors.acquire import AcquireStats, ProgressSink, Source, acquire
from collectors.host_identity import started_details
from manifest.bundle import BundleWriter, WriterState
from manifest.errors import BundleError, CollectionInterrupted, SealboxError
from manifest.osio.crashpoint import crash_point
from manifest.previous import PreviousBundle, load_previous

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from manifest.resume import ResumePoint
    from manifest.signing.keys import Signer


@dataclass
class CollectionRequest:
    """Everything one run needs; the CLI and `respond` fill it in."""

    case: str
    out_dir: Path
    signer: Signer
    sources: list[Source]
    root: Path | None = None
    volatile: Callable[[BundleWriter], list[str]] | None = None
    incident: dict[str, Any] | None = None
    post: list[Callable[[BundleWriter, Path], None]] = field(default_factory=list)
    profile: str | None = None
    organization: str = ""
    contact: str = ""
    workers: int | None = None
    reason: str = ""
    host: str | None = None
    immutable: bool | None = None
    tsa_url: str | None = None
    resume: Path | None = None  # an interrupted BUNDLE.incomplete to finish instead of a new one
    previous: Path | None = None  # a sealed bundle this one follows up: only what changed is copied
    # Read the files from a private mount namespace with the sources' mounts noatime, so that
    # not even a symlink's atime moves (manifest/osio/mountns.py). It changes this whole process,
    # so the commands ask for it; a library caller decides for itself.
    private_mounts: bool = False
    # Court fields for `collection-started` (SPEC §4.2): exhibit, authority, device overrides;
    # collectors.host_identity adds the device identifiers read from the target.
    started: dict[str, Any] = field(default_factory=dict)


@dataclass
class CollectionResult:
    bundle: Path
    bundle_id: str
    stats: AcquireStats
    volatile_sections: list[str]
    timestamp_error: str | None = None
    shared_filesystem: list[str] = field(default_factory=list)  # sources on the output's filesystem


def sources_on_output_filesystem(out_dir: Path, sources: list[Source]) -> list[str]:
    """Sources on the filesystem the bundle is written to. Writing there can overwrite deleted
    data on it (free blocks that may hold evidence), so responders are warned and it is logged."""
    try:
        out_dev = out_dir.stat().st_dev
    except OSError:
        return []
    same = []
    for src in sources:
        try:
            if os.lstat(src.path).st_dev == out_dev:
                same.append(_source_text(src))
        except OSError:
            continue  # a missing source is recorded as an error item
    return same


def _source_text(src: Source) -> str:
    return src.original.decode("utf-8", "surrogateescape")


def _resume(request: CollectionRequest, previous: PreviousBundle | None) -> ResumePoint:
    from manifest.resume import resume

    assert request.resume is not None
    return resume(
        request.resume,
        request.signer,
        organization=request.organization,
        contact=request.contact,
        root=request.root,
        immutable=request.immutable,
        sources=[_source_text(s) for s in request.sources],
        case=request.case,
        previous=previous.tagmanifest_sha256 if previous is not None else None,
    )


def _enter_private_mounts(writer: BundleWriter, sources: list[Source]) -> None:
    from manifest.osio.mountns import enter_noatime_namespace

    points, problem = enter_noatime_namespace([s.path for s in sources])
    if problem:
        writer.log.warning("noatime-mounts-unavailable", reason=problem, noatime_mounts=points)
    else:
        writer.log.info("noatime-mounts", noatime_mounts=points)


def _recount(writer: BundleWriter, stats: AcquireStats) -> None:
    """Items by status, kind and collector over the whole of items.jsonl (kept and new)."""
    from manifest.format.items import iter_items

    writer.flush_items()
    stats.items = 0
    tables = {"status": stats.by_status, "kind": stats.by_kind, "collector": stats.by_collector}
    for table in tables.values():
        table.clear()
    for item in iter_items(writer.items_path):
        stats.items += 1
        for key, table in tables.items():
            value = str(item.get(key))
            table[value] = table.get(value, 0) + 1


@contextlib.contextmanager
def _abort_on_failure(writer: BundleWriter, doing: str) -> Iterator[None]:
    """Whatever stops `doing` (Ctrl-C, a refusal, a disk error) aborts the writer with a custody
    note and one line saying where the partial bundle is and how to finish it."""
    try:
        yield
    except KeyboardInterrupt as exc:
        writer.abort("interrupted")
        raise CollectionInterrupted(
            f"interrupted: nothing was sealed; the partial bundle is {writer.path}",
            "a name ending in .incomplete was never sealed; to finish it, run the same command "
            f"again with --resume '{writer.path}'",
        ) from exc
    except SealboxError as exc:
        writer.abort(exc.message)
        raise BundleError(
            f"{exc.message}; nothing was sealed, partial bundle left at {writer.path}", exc.hint
        ) from exc
    except OSError as exc:
        writer.abort(str(exc))
        raise BundleError(
            f"{doing} failed: {exc.strerror or exc} ({exc.filename or ''}); "
            f"partial bundle left at {writer.path}"
        ) from exc


def _finish_seal(request: CollectionRequest, point: ResumePoint) -> CollectionResult:
    """A run killed after its `sealed` event: the seal's own files are written, nothing else."""
    writer, sealed = point.writer, point.sealed
    assert writer is not None and sealed is not None
    value = sealed.get("counts")
    counts: dict[str, Any] = value if isinstance(value, dict) else {}
    stats = AcquireStats()
    stats.items = int(counts.get("items") or 0)
    stats.files, stats.bytes = int(counts.get("payload_files") or 0), int(counts.get("payload_bytes") or 0)
    stats.by_status.update(counts.get("by_status") or {})
    stats.by_kind.update(counts.get("by_kind") or {})
    with _abort_on_failure(writer, "sealing"):
        bundle = writer.finish_seal(
            str(sealed.get("payload_oxum")), str(sealed.get("manifest_sha256")), tsa_url=request.tsa_url
        )
    return CollectionResult(bundle, writer.bundle_id, stats, [], writer.timestamp_error)


def run_collection(request: CollectionRequest, progress: ProgressSink | None = None) -> CollectionResult:
    """Collect, seal and return the sealed bundle; an interrupted run stays `.incomplete`."""
    previous = load_previous(request.previous) if request.previous is not None else None
    point = _resume(request, previous) if request.resume is not None else None
    if point is not None and point.sealed is not None:
        return _finish_seal(request, point)
    if point is not None:
        assert point.writer is not None
        writer = point.writer
    else:
        writer = BundleWriter(
            WriterState.fresh(
                request.out_dir,
                case=request.case,
                signer=request.signer,
                host=request.host,
                organization=request.organization,
                contact=request.contact,
                root=request.root,
                immutable=request.immutable,
                previous=previous.tagmanifest_sha256 if previous is not None else None,
            )
        )
    with _abort_on_failure(writer, "collection"):
        sources = [_source_text(s) for s in request.sources]
        if point is not None:
            writer.custody.add("note", point.details(), point.reason)
        else:
            writer.log.info(
                "collection-started",
                sources=sources,
                profile=request.profile,
                root=str(request.root) if request.root else None,
                pid=os.getpid(),
                euid=os.geteuid(),
            )
            crash_point("collect-before-custody")
            writer.custody.add(
                "collection-started",
                {
                    "sources": sources[:1000],
                    "source_count": len(request.sources),
                    "profile": request.profile,
                    "root": str(request.root) if request.root else None,
                    "host": writer.host,
                    "previous": (
                        {"bundle": previous.name, "tagmanifest_sha256": previous.tagmanifest_sha256}
                        if previous is not None
                        else None
                    ),
                    **started_details(request.root, request.started),
                },
                request.reason,
            )
        shared = sources_on_output_filesystem(request.out_dir, request.sources)
        if shared:
            writer.log.warning("output-on-source-filesystem", out=str(request.out_dir), sources=shared[:1000])
        sections: list[str] = []
        completed = point is not None and point.completed  # only the sealing is left to do
        if request.volatile is not None and (point is None or not point.volatile_done):
            sections = request.volatile(writer)
            writer.custody.add("volatile-captured", {"sections": sections})
        if request.private_mounts and not completed:
            _enter_private_mounts(writer, request.sources)
        stats = AcquireStats()
        if not completed:
            stats = acquire(
                writer,
                request.sources,
                workers=request.workers,
                progress=progress,
                resolve_names=request.root is None,
                skip=point.done if point is not None else None,
                links=point.links if point is not None else None,
                previous=previous,
            )
        if point is not None:  # what the interrupted run had recorded counts as well
            _recount(writer, stats)
        elif sections:  # volatile snapshots are items (and payload) too
            stats.items += len(sections)
            stats.by_status["ok"] = stats.by_status.get("ok", 0) + len(sections)
            stats.by_kind["volatile"] = len(sections)
            for name in sections:
                stats.by_collector[f"volatile/{name}"] = 1
        stats.files, stats.bytes = writer.payload_files, writer.payload_bytes
        writer.finish_items()
        for step in request.post:
            step(writer, writer.items_path)
        if request.incident is not None:
            body = json.dumps(request.incident, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
            writer.write_metadata("incident.json", body.encode())
        counts = {
            "items": stats.items,
            "payload_files": writer.payload_files,
            "payload_bytes": writer.payload_bytes,
            "by_status": stats.by_status,
            "by_kind": stats.by_kind,
        }
        if not completed:
            writer.log.info("collection-completed", **counts)
            writer.custody.add("collection-completed", counts)
        bundle = writer.seal(counts, tsa_url=request.tsa_url)
    return CollectionResult(bundle, writer.bundle_id, stats, sections, writer.timestamp_error, shared)
