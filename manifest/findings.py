"""Typed verification findings: every check reports all of its problems, each naming the place."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One problem: `kind` is stable for machines, `where` names a file, line or item."""

    kind: str
    where: str
    message: str
    expected: str | None = None
    found: str | None = None

    def line(self) -> str:
        text = f"{self.kind}: {self.where}: {self.message}"
        if self.expected is not None or self.found is not None:
            text += f" (expected {self.expected}, found {self.found})"
        return text

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
