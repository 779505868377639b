"""`sealbox artifacts` and `sealbox profiles` in a subprocess: listing, showing, and a malformed
user definition named in one line (the catalog itself is tested in tests/unit/test_artifacts.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

# A user definition whose kind no collector has.
BAD_KIND = """
[[artifact]]
name = "site-app-logs"
description = "Our in-house app"
os = ["linux"]
kind = "registry"
paths = ["/opt/app/log"]
tags = ["logs", "site"]
"""


def test_cli_lists_and_shows(cli) -> None:
    listed = cli("artifacts", "list", "--json", check=True)
    names = {a["name"] for a in json.loads(listed.stdout)}
    assert {"linux-auth", "macos-unified-logs", "windows-event-logs", "volatile-state"} <= names
    shown = cli("artifacts", "show", "linux-journal", check=True)
    assert "/run/log/journal" in shown.stdout and "logs/linux-journal" in shown.stdout
    profiles = cli("profiles", "list", check=True)
    for name in ("linux-default", "macos-default", "windows-default", "logs", "email", "minimal"):
        assert name in profiles.stdout
    email = json.loads(cli("profiles", "show", "email", "--json", check=True).stdout)
    assert "linux-thunderbird" in email["resolved"] and "windows-outlook" in email["resolved"]
    missing = cli("profiles", "show", "nope")
    assert missing.returncode == 2 and "no profile named 'nope'" in missing.stderr


def test_cli_reports_malformed_user_file_with_file_and_field(cli, tmp_path: Path) -> None:
    (tmp_path / "defs").mkdir()
    path = tmp_path / "defs" / "bad.toml"
    path.write_text(BAD_KIND)
    proc = cli("artifacts", "list", "--artifacts-dir", tmp_path / "defs")
    assert proc.returncode == 2
    assert str(path) in proc.stderr and "field 'kind'" in proc.stderr
