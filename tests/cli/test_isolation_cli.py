"""`sealbox isolate --dry-run --platform` in a subprocess: the plan for another platform needs no
root and is printed; without --dry-run it is refused. The plans: tests/unit/test_isolation_model.py."""

from __future__ import annotations

import json
import subprocess
import sys

from agent.isolation import macos
from tests.support.env import REPO

PLAN_ALLOW = ["203.0.113.2:8443/tcp", "2001:db8:1::/64", "198.51.100.7:514"]


def test_cli_dry_run_for_other_platforms_needs_no_root(tmp_path):
    env = {
        "PYTHONPATH": str(REPO),
        "SEALBOX_HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "isolate",
            "--dry-run",
            "--platform",
            "macos",
            "--json",
            *[a for spec in PLAN_ALLOW for a in ("--allow", spec)],
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["platform"] == "macos" and data["files"][macos.RULES].startswith("# sealbox")
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "isolate", "--platform", "windows", "--allow", "203.0.113.2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2 and "--dry-run" in proc.stderr
