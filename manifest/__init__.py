"""The evidence bundle: its format, writing and sealing, signing, verification and hand-over.

Floors, top to bottom; a module imports only from its own floor or below (tests/unit/test_layers.py):
  handover/, vault/            export, receive, report; WORM object storage
  verify/                      the verdict
  bundle, resume, previous     writing and resuming one bundle, follow-ups
  views/, hashing, signing/, acquisition_log
  format/, osio/               the format's pure parts; OS plumbing
  errors, findings, version    vocabularies everyone shares
`manifest` never imports `collectors` or `agent`.
"""

from __future__ import annotations

__version__ = "0.1.0"
TOOL_NAME = "sealbox"
FORMAT_VERSION = 1
