"""A profile run: artifacts -> sources on a target, volatile first, email index after the files.

`build_request` turns a profile into a `CollectionRequest` for `run_collection`; the CLI's
`sealbox respond` adds keys, the incident report, verification and the next steps around it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collectors import email_index, volatile
from collectors.collection import CollectionRequest
from collectors.expand import Plan, Target, plan_sources
from collectors.host_identity import image_host
from collectors.kind import RunSetup
from collectors.kinds import KINDS
from manifest.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from collectors.artifacts import Catalog, Selection
    from manifest.bundle import BundleWriter
    from manifest.signing.keys import Signer

EMAIL_INDEX = "email-index.jsonl"


@dataclass
class Prepared:
    """What a run will do, before it starts (also what `--dry-run` shows)."""

    target: Target
    selection: Selection
    plan: Plan
    volatile_sections: list[str]
    email_collectors: set[str]
    request: CollectionRequest

    def describe(self) -> dict[str, Any]:
        return {
            "profile": self.selection.profile.name,
            "root": os.fsdecode(self.target.root),
            "os": self.target.os,
            "live": self.target.live,
            "volatile_sections": self.volatile_sections,
            "artifacts": {a.name: self.plan.matched.get(a.name, []) for a in self.selection.artifacts},
            "notes": {
                **{a.name: "not applicable to this OS" for a in self.selection.not_applicable},
                **self.plan.notes,
            },
            "sources": len(self.plan.sources),
        }


def default_profile(target: Target) -> str:
    if target.os is None:
        raise UsageError(
            f"cannot tell which OS {os.fsdecode(target.root)} holds",
            "choose a profile with --profile (see `sealbox profiles list`)",
        )
    return f"{target.os}-default"


def capture_volatile(sections: list[str]) -> Callable[[BundleWriter], list[str]]:
    """The volatile step: each section written as soon as it is taken, failures recorded."""

    def step(writer: BundleWriter) -> list[str]:
        done = []
        for name, doc in volatile.capture(sections):
            writer.add_volatile(name, doc)
            writer.log.info("volatile-section", section=name, ok=doc["ok"], error=doc.get("error"))
            done.append(name)
        return done

    return step


def write_captured(docs: list[tuple[str, dict[str, Any]]]) -> Callable[[BundleWriter], list[str]]:
    """The volatile step of a run whose volatile state was taken before it (`capture_first`)."""

    def step(writer: BundleWriter) -> list[str]:
        for name, doc in docs:
            writer.add_volatile(name, doc)
            writer.log.info("volatile-section", section=name, ok=doc["ok"], error=doc.get("error"))
        return [name for name, _doc in docs]

    return step


def capture_first(prepared: Prepared) -> list[tuple[str, dict[str, Any]]]:
    """Take the volatile state now, before anything waits for a person (RFC 3227: order of
    volatility), and make the run write exactly these snapshots."""
    docs = list(volatile.capture(prepared.volatile_sections))
    prepared.request.volatile = write_captured(docs) if docs else None
    return docs


def log_plan(prepared_describe: dict[str, Any]) -> Callable[[BundleWriter, Path], None]:
    """Record in the acquisition log what each artifact matched and why some matched nothing."""

    def step(writer: BundleWriter, _items: Path) -> None:
        writer.log.info("artifact-plan", **prepared_describe)

    return step


def index_email(collectors: set[str]) -> Callable[[BundleWriter, Path], None]:
    """The post step writing metadata/email-index.jsonl from the collected copies."""

    def step(writer: BundleWriter, items_path: Path) -> None:
        messages = errors = 0
        with writer.open_metadata(EMAIL_INDEX) as out:
            for entry in email_index.build_index(
                writer.path, _mail_items(items_path, collectors), collectors
            ):
                out.write(email_index.dumps_line(entry))
                messages += 1
                errors += bool(entry.get("parse_error"))
        writer.log.info("email-indexed", entries=messages, parse_errors=errors)

    return step


def _mail_items(items_path: Path, collectors: set[str]) -> list[dict[str, Any]]:
    # Streamed: items.jsonl can be large; only mail collectors' lines are parsed.
    needles = [json.dumps(c).encode() for c in collectors]
    found = []
    with items_path.open("rb") as fh:
        for line in fh:
            if any(n in line for n in needles):
                item = json.loads(line)
                if item.get("collector") in collectors:
                    found.append(item)
    return found


def build_request(
    catalog: Catalog,
    *,
    case: str,
    out_dir: Path,
    signer: Signer,
    profile: str | None = None,
    root: Path | None = None,
    since_ns: int | None = None,
    max_file_size: int | None = None,
    with_volatile: bool | None = None,
    incident: dict[str, Any] | None = None,
    reason: str = "",
    workers: int | None = None,
    resume: Path | None = None,
    previous: Path | None = None,
    private_mounts: bool = False,
    started: dict[str, Any] | None = None,
) -> Prepared:
    """Plan one run. Volatile state is the live host's: by default taken only when the root is `/`."""
    target = Target.at(root)
    selection = catalog.select(profile or default_profile(target), target.os)
    plan = plan_sources(selection.artifacts, target, max_file_size=max_file_size, since_ns=since_ns)
    run = RunSetup(plan, take_volatile=target.live if with_volatile is None else with_volatile)
    for kind, artifacts in KINDS.grouped(selection.artifacts):
        kind.prepare(artifacts, run)
    request = CollectionRequest(
        case=case,
        out_dir=out_dir,
        signer=signer,
        sources=plan.sources,
        root=None if target.live else Path(os.fsdecode(target.root)),
        # A dead box is named after the imaged machine, never after the examiner's.
        host=None if target.live else image_host(Path(os.fsdecode(target.root))),
        started=dict(started or {}),
        volatile=run.volatile,
        incident=incident,
        profile=selection.profile.name,
        reason=reason,
        workers=workers,
        resume=resume,
        previous=previous,
        private_mounts=private_mounts,
    )
    prepared = Prepared(target, selection, plan, run.volatile_sections, run.email_collectors, request)
    request.post.append(log_plan(prepared.describe()))
    request.post.extend(run.post)
    return prepared
