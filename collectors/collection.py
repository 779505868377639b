"""One collection run, in the order of volatility: volatile state, files, post-processing, seal."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from collectors.acquire import AcquireStats, ProgressSink, Source, acquire
from manifest.bundle import BundleWriter
from manifest.errors import BundleError, CollectionInterrupted, SealboxError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from manifest.keys import Signer


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


@dataclass
class CollectionResult:
    bundle: Path
    bundle_id: str
    stats: AcquireStats
    volatile_sections: list[str]
    timestamp_error: str | None = None


def _source_text(src: Source) -> str:
    return src.original.decode("utf-8", "surrogateescape")


def run_collection(request: CollectionRequest, progress: ProgressSink | None = None) -> CollectionResult:
    """Collect, seal and return the sealed bundle; an interrupted run stays `.incomplete`."""
    writer = BundleWriter(
        request.out_dir,
        case=request.case,
        signer=request.signer,
        host=request.host,
        organization=request.organization,
        contact=request.contact,
        root=request.root,
        immutable=request.immutable,
    )
    try:
        writer.log.info(
            "collection-started",
            sources=[_source_text(s) for s in request.sources],
            profile=request.profile,
            root=str(request.root) if request.root else None,
            pid=os.getpid(),
            euid=os.geteuid(),
        )
        writer.custody.add(
            "collection-started",
            {
                "sources": [_source_text(s) for s in request.sources][:1000],
                "source_count": len(request.sources),
                "profile": request.profile,
                "root": str(request.root) if request.root else None,
            },
            request.reason,
        )
        sections: list[str] = []
        if request.volatile is not None:
            sections = request.volatile(writer)
            writer.custody.add("volatile-captured", {"sections": sections})
        stats = acquire(
            writer,
            request.sources,
            workers=request.workers,
            progress=progress,
            resolve_names=request.root is None,
        )
        stats.items += len(sections)
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
        writer.log.info("collection-completed", **counts)
        writer.custody.add("collection-completed", counts)
        bundle = writer.seal(counts, tsa_url=request.tsa_url)
    except KeyboardInterrupt as exc:
        writer.abort("interrupted")
        raise CollectionInterrupted(
            f"interrupted: nothing was sealed; the partial bundle is {writer.path}",
            "a name ending in .incomplete was never sealed; run the collection again",
        ) from exc
    except SealboxError as exc:
        writer.abort(exc.message)
        raise BundleError(
            f"{exc.message}; nothing was sealed, partial bundle left at {writer.path}", exc.hint
        ) from exc
    except OSError as exc:
        writer.abort(str(exc))
        raise BundleError(
            f"collection failed: {exc.strerror or exc} ({exc.filename or ''}); "
            f"partial bundle left at {writer.path}"
        ) from exc
    return CollectionResult(bundle, writer.bundle_id, stats, sections, writer.timestamp_error)
