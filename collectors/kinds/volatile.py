"""`kind = "volatile"`: state of the live host (collectors.volatile sections), taken first.

It has no paths; its `sections` name registered volatile sections (all of them when left out).
Only the live system has this state: from a --root it is not taken unless --volatile forces it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from collectors.kind import ArtifactKind

if TYPE_CHECKING:
    from collectors.artifacts import Artifact, FieldCheck
    from collectors.kind import RunSetup


class VolatileKind(ArtifactKind):
    name = "volatile"
    summary = "live-host state (clock, connections, processes...), captured before any file"
    example = {  # noqa: RUF012 - read only, a ClassVar of the base class
        "name": "example-volatile",
        "description": "Clock and processes",
        "os": ["linux", "macos", "windows"],
        "kind": "volatile",
        "sections": ["system", "processes"],
        "tags": ["volatile"],
    }
    reads_paths = False

    def check(self, check: FieldCheck, paths: tuple[str, ...], oses: tuple[str, ...]) -> tuple[str, ...]:
        from collectors.volatile import SECTIONS

        if paths:
            raise check.fail("paths", "a volatile artifact has no paths")
        return check.strings("sections", choices=SECTIONS.names()) or SECTIONS.names()

    def describe(self, art: Artifact) -> dict[str, Any]:
        return {"sections": list(art.sections)}

    def prepare(self, artifacts: list[Artifact], run: RunSetup) -> None:
        from collectors.respond import capture_volatile  # the step; respond plans the whole run

        if run.take_volatile:
            for art in artifacts:
                run.volatile_sections += [s for s in art.sections if s not in run.volatile_sections]
        for art in artifacts:
            if not run.take_volatile:
                run.plan.notes[art.name] = (
                    "not taken: the root is not this live system (use --volatile to force)"
                )
            elif run.volatile_sections:
                run.plan.matched[art.name] = [f"volatile:{s}" for s in run.volatile_sections]
        if run.volatile_sections and run.volatile is None:
            run.volatile = capture_volatile(run.volatile_sections)
