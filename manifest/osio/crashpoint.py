"""Named crash windows, for tests that kill sealbox exactly where an interruption hurts most.

`crash_point("export-staged")` does nothing unless the environment variable
`SEALBOX_TEST_KILL_AT` names that point; then the process sends itself SIGKILL, which no
handler can catch — the same as a power cut or the out-of-memory killer at that moment. The
points are listed in CRASH_POINTS so a test can ask for each of them by name.
"""

from __future__ import annotations

import os
import signal

ENV = "SEALBOX_TEST_KILL_AT"

CRASH_POINTS = (
    "collect-before-custody",  # the bundle directory exists, no custody line yet
    "seal-after-sealed-event",  # `sealed` is in custody.jsonl, no tag file written yet
    "seal-before-rename",  # signed and locked down, still named .incomplete
    "export-partial-written",  # the package is half written as .partial
    "export-staged",  # the package is complete and durable, its event not yet appended
    "export-event-appended",  # the event is in the log, the package not yet renamed into place
    "receive-extracted",  # the package is in quarantine, nothing moved
    "receive-event-appended",  # the received event is in the quarantined copy, nothing moved
    "receive-extras-moved",  # VERIFY.txt and the report are in place, the bundle not yet
    "isolate-after-intent",  # the isolation record is saved, no rule loaded
    "isolate-after-load",  # the rules are loaded, the record still says applying
    "isolate-after-record",  # the record says isolated/checking, connections not yet cut
    "isolate-during-check",  # the --check is under way
    "restore-after-intent",  # the record says restoring, the rules still loaded
    "restore-after-remove",  # the rules are gone, the comparison not yet made
    "restore-before-clear",  # restored, the record not yet cleared
    "vault-part-uploaded",  # a multipart upload has its first part, nothing completed
)


def crash_point(name: str) -> None:
    """SIGKILL this process when SEALBOX_TEST_KILL_AT names `name` (tests only)."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
