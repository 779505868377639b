"""Tests that run sealbox as user `nobody` do not depend on the modes of the checkout's parents:
they run it from a world-readable copy (tests.support.env.unprivileged_tree). Proved here on a copy
of the checkout inside a 0700 directory, as a clone in /root would be."""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

from tests.support.env import REPO, as_nobody, require_root, unprivileged_tree

if TYPE_CHECKING:
    from pathlib import Path


def test_sealbox_runs_as_nobody_from_a_checkout_whose_parent_is_0700(tmp_path: Path) -> None:
    require_root()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    checkout = locked / "sealbox"
    for package in ("agent", "collectors", "manifest"):
        shutil.copytree(REPO / package, checkout / package, ignore=shutil.ignore_patterns("__pycache__"))
    args = ["-m", "agent", "isolation", "status"]

    # The control: straight from the locked checkout, nobody cannot even import sealbox.
    prefix, env = as_nobody(checkout)
    direct = subprocess.run(
        [*prefix, *args], capture_output=True, text=True, env=env, cwd="/", timeout=120, check=False
    )
    assert direct.returncode == 1 and "No module named agent" in direct.stderr, direct.stderr

    tree = unprivileged_tree(checkout)
    assert not tree.is_relative_to(locked)
    prefix, env = as_nobody(tree)
    proc = subprocess.run(
        [*prefix, *args], capture_output=True, text=True, env=env, cwd=tree, timeout=120, check=False
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "needs root" in lines[0], proc.stderr
    version = subprocess.run(
        [*prefix, "-m", "agent", "--version"], capture_output=True, text=True, env=env, cwd=tree, timeout=120
    )
    assert version.returncode == 0 and version.stdout.startswith("sealbox"), version.stderr
