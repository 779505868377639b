"""Bundle writing, hashing, signing, custody, verification, export and reports."""

from __future__ import annotations

__version__ = "0.1.0"
TOOL_NAME = "sealbox"
FORMAT_VERSION = 1
