"""`kind = "email"`: mail stores, acquired like files, then indexed from their copies into
metadata/email-index.jsonl (mbox, Maildir, .eml, .emlx, Outlook .pst/.ost/.msg)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collectors.kind import ArtifactKind

if TYPE_CHECKING:
    from collectors.artifacts import Artifact
    from collectors.kind import RunSetup


class EmailKind(ArtifactKind):
    name = "email"
    summary = "mail stores named by path globs, copied, then indexed (metadata/email-index.jsonl)"
    example = {  # noqa: RUF012 - read only, a ClassVar of the base class
        "name": "example-mail",
        "description": "Users' mbox files",
        "os": ["linux"],
        "kind": "email",
        "paths": ["~/mbox"],
        "tags": ["email"],
    }

    def prepare(self, artifacts: list[Artifact], run: RunSetup) -> None:
        from collectors.respond import index_email  # the post step; respond plans the whole run

        collectors = {a.collector for a in artifacts}
        run.email_collectors |= collectors
        run.post.append(index_email(collectors))
