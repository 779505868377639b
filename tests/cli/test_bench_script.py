"""scripts/bench runs end to end (a smoke run: its figures are read by people, never asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support.env import REPO


def test_bench_quick_run_prints_both_ratios_and_peak_memory() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/bench"), "--quick", "--rounds", "1", "--only", "small"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"sealbox collect .* ratio \d+\.\d\dx .* peak PSS \d+ MB", proc.stdout), proc.stdout
    assert re.search(r"sealbox verify .* ratio \d+\.\d\dx .* peak PSS \d+ MB", proc.stdout), proc.stdout
    assert re.search(r"floor: hashing only .* ratio \d+\.\d\dx", proc.stdout), proc.stdout
