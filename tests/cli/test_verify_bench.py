"""scripts/bench --files N runs end to end (the many-small-files memory case; figures are read by
people, never asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support.env import REPO


def test_bench_many_files_prints_verify_peak_memory_and_floor_ratio() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/bench"), "--files", "1500", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "many files: 1,500 x 100 bytes" in proc.stdout, proc.stdout
    assert re.search(r"sealbox verify .* ratio \d+\.\d\dx .* peak PSS \d+ MB", proc.stdout), proc.stdout
    assert re.search(r"verify / floor +\d+\.\d\dx", proc.stdout), proc.stdout
