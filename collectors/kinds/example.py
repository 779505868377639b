"""An example artifact kind and an example volatile section, documented to be copied.

Neither is registered, so neither runs. To add a kind of your own:

1. Copy this module to `collectors/kinds/<name>.py` and rename the class.
2. Set `name` (what `kind = "..."` says in an artifact TOML file), `summary` (one line), and
   `example` (a minimal valid `[[artifact]]` table: the registry's test parses it).
3. Override only what differs from `ArtifactKind`: `check` (which fields the kind takes; by
   default it needs `paths` and refuses `sections`), `describe` (its fields for `artifacts show`),
   `prepare` (what a run does beyond acquiring the paths: a step before the files, a post step
   reading their copies...). Set `reads_paths = False` if `paths` are not files to acquire.
4. Register it: add `ExampleKind()` to `KINDS` in `collectors/kinds/__init__.py`.

To add a volatile section: write a function returning a JSON-ready dict (ints and strings, no
floats; raise on failure, and the section is recorded as failed), like `uptime` below, and add
`("uptime", uptime)` to `SECTIONS` in `collectors/volatile.py` at its place in the order of
volatility. The tests run every registered kind and section.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from collectors.kind import ArtifactKind

if TYPE_CHECKING:
    from pathlib import Path

    from collectors.artifacts import Artifact
    from collectors.kind import RunSetup
    from manifest.bundle import BundleWriter


class ExampleKind(ArtifactKind):
    """Files acquired as usual, and one line per artifact in the acquisition log after them."""

    name = "example"
    summary = "files named by path globs, then noted in the acquisition log (an example)"
    example = {  # noqa: RUF012 - read only, a ClassVar of the base class
        "name": "example-hosts",
        "description": "The hosts file, as an example",
        "os": ["linux"],
        "kind": "example",
        "paths": ["/etc/hosts"],
        "tags": ["example"],
    }

    def prepare(self, artifacts: list[Artifact], run: RunSetup) -> None:
        names = [a.name for a in artifacts]

        def note(writer: BundleWriter, _items: Path) -> None:
            writer.log.info("example-artifacts-collected", artifacts=names)

        run.post.append(note)


def uptime() -> dict[str, Any]:
    """An example volatile section: how long the host has been up, in integer nanoseconds."""
    return {"uptime_ns": time.clock_gettime_ns(time.CLOCK_BOOTTIME)}
