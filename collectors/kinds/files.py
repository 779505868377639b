"""`kind = "files"`: the paths are acquired as they are; nothing else happens to them."""

from __future__ import annotations

from collectors.kind import ArtifactKind


class FilesKind(ArtifactKind):
    name = "files"
    summary = "files and directories named by path globs, copied and hashed"
    example = {  # noqa: RUF012 - read only, a ClassVar of the base class
        "name": "example-files",
        "description": "A log directory",
        "os": ["linux"],
        "kind": "files",
        "paths": ["/var/log"],
        "tags": ["logs"],
    }
