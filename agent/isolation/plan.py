"""A platform plan: the exact commands sealbox runs to isolate, check and restore."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Plan:
    """`isolate`, `status` and `restore` are scripts in the platform's own shell."""

    platform: str
    shell: str
    isolate: str
    status: str
    restore: str
    files: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "shell": self.shell,
            "files": self.files,
            "isolate": self.isolate,
            "status": self.status,
            "restore": self.restore,
            "notes": list(self.notes),
        }

    def render(self) -> str:
        """The plan as one readable text (what `--dry-run --platform X` prints)."""
        out = [f"# sealbox isolation plan for {self.platform} ({self.shell})"]
        out += [f"# note: {n}" for n in self.notes]
        for name, text in self.files.items():
            out += [f"\n## file {name}", text.rstrip("\n")]
        for title, script in (("isolate", self.isolate), ("status", self.status), ("restore", self.restore)):
            out += [f"\n## {title}", script.rstrip("\n")]
        return "\n".join(out) + "\n"
