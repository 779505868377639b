"""The acquisition log: structlog JSON lines, and a start-up that does not load rich for it."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from manifest.acquisition_log import open_log
from tests.support.env import REPO


def test_events_are_sorted_json_lines_with_level_and_utc_time() -> None:
    stream = io.StringIO()
    log = open_log(stream, bundle="b-1", case="CASE-1")
    log.warning("directory-unreadable", path="/var/log/private", error="permission denied")
    log.info("sealing", payload_oxum="10.2")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first == {
        "bundle": "b-1",
        "case": "CASE-1",
        "event": "directory-unreadable",
        "path": "/var/log/private",
        "error": "permission denied",
        "level": "warning",
        "timestamp": first["timestamp"],
    }
    assert first["timestamp"].endswith("Z")
    assert lines[1] == json.dumps(json.loads(lines[1]), sort_keys=True)


def test_a_collection_without_a_terminal_does_not_load_rich_yet_rich_still_works() -> None:
    code = (
        "import sys\n"
        "import agent.commands.collect, manifest.bundle\n"
        "print('rich' in sys.modules)\n"
        "from agent.progress import RichProgress\n"
        "import rich.progress\n"
        "print(rich.progress.Progress.__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "Progress"]
