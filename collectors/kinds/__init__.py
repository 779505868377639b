"""The artifact kinds, one module each, registered here once (see `collectors.kind`).

To add a kind: copy `example.py` to a new module, then add an instance of its class to `KINDS`.
"""

from __future__ import annotations

from collectors.kind import KindRegistry
from collectors.kinds.email import EmailKind
from collectors.kinds.files import FilesKind
from collectors.kinds.volatile import VolatileKind

KINDS = KindRegistry([FilesKind(), VolatileKind(), EmailKind()])
