"""scripts/quickstart keeps its demo evidence outside the checkout, says where, and `--clean`
removes it (immutable flags included) with the DEMO key."""

from __future__ import annotations

import json
import os
import subprocess
from typing import TYPE_CHECKING

from tests.support.env import REPO, clear_flags, require

if TYPE_CHECKING:
    from pathlib import Path


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(tmp_path), "SEALBOX_HOME": str(tmp_path / "store")}
    return subprocess.run(
        ["bash", str(REPO / "scripts/quickstart"), *args],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )  # fmt: skip


def test_demo_evidence_outside_the_checkout_and_clean_removes_it(tmp_path: Path) -> None:
    require((REPO / ".venv/bin/sealbox").exists(), "scripts/test installs sealbox into .venv")
    demo = tmp_path / "demo"
    try:
        proc = _run(tmp_path, "--no-install", "--profile", "minimal", "--out", str(demo))
        assert proc.returncode == 0, proc.stderr
        bundles = [p for p in demo.iterdir() if p.name.startswith("DEMO-")]
        assert len(bundles) == 1 and proc.stdout.splitlines()[0] == str(bundles[0])
        assert f"the demo evidence is in {demo} (outside this checkout)" in proc.stderr
        assert "scripts/quickstart --clean" in proc.stderr
        keys = json.loads(
            subprocess.run(
                [str(REPO / ".venv/bin/sealbox"), "keys", "list", "--json"], capture_output=True, text=True,
                env={**os.environ, "SEALBOX_HOME": str(tmp_path / "store")}, check=True,
            ).stdout
        )  # fmt: skip
        assert [k["name"] for k in keys] == ["DEMO KEY - not for evidence"]
        inside = _run(tmp_path, "--no-install", "--out", str(REPO / "evidence"))
        assert inside.returncode == 2 and "inside the checkout" in inside.stderr
        assert not (REPO / "evidence").exists()

        cleaned = _run(tmp_path, "--clean", "--out", str(demo))
        assert cleaned.returncode == 0, cleaned.stderr
        assert f"removed the demo evidence in {demo}" in cleaned.stdout
        assert f"deleted the DEMO key {keys[0]['fingerprint']}" in cleaned.stdout
        assert not demo.exists()
    finally:
        clear_flags(demo)
