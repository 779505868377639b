"""The test harness every test may import: prerequisites, the CLI as a subprocess, paths."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
ASSETS = REPO / "tests" / "assets"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, why: str) -> None:
    """Skip locally when a prerequisite is missing; in CI a missing prerequisite is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {why}")
    pytest.skip(why)


def require_tool(name: str) -> str:
    """A command on PATH, or installed beside this Python (the venv's bin, not always on PATH)."""
    path = shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))
    require(path is not None, f"{name} is not installed")
    return path or name


def require_root() -> None:
    require(os.geteuid() == 0, "needs root")


def clear_flags(path: Path) -> None:
    """Drop immutable/append-only flags so pytest can remove sealed bundles."""
    if path.exists() and shutil.which("chattr") and os.geteuid() == 0:
        subprocess.run(["chattr", "-R", "-i", "-a", str(path)], capture_output=True, check=False)
    if path.exists():
        for d in [path, *(p for p in path.rglob("*") if p.is_dir() and not p.is_symlink())]:
            d.chmod(0o755)


class Cli:
    """Runs `python -m agent` from this checkout with its own SEALBOX_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "SEALBOX_HOME": str(home), "PYTHONPATH": str(REPO)}
        self.env.pop("COLUMNS", None)

    def __call__(
        self,
        *args: str | os.PathLike[str],
        input: str | None = None,
        check: bool = False,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "agent", *map(str, args)],
            capture_output=True,
            text=True,
            env=self.env,
            input=input,
            timeout=timeout,
            cwd=REPO,
            errors="replace",
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"sealbox {' '.join(map(str, args))} exited {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc
