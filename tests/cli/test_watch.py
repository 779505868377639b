"""`sealbox watch`: a first bundle, then a follow-up only when a source was written to."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from tests.support.builders import make_key, snapshot_times
from tests.support.env import REPO, clear_flags

if TYPE_CHECKING:
    from pathlib import Path


def sealed(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if not p.name.endswith(".incomplete"))


def wait_for(out: Path, count: int, proc: subprocess.Popen, timeout: float = 30) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        found = sealed(out)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no bundle {count} within {timeout} s")


def test_watch_seals_a_follow_up_only_after_a_write(cli, tmp_path):
    make_key(cli)
    src = tmp_path / "src"
    (src / "logs").mkdir(parents=True)
    (src / "logs/auth.log").write_text("day one\n")
    (src / "logs/syslog").write_text("quiet\n")
    out = tmp_path / "out"
    out.mkdir()
    args = ["watch", "--case", "C-WATCH", "--out", str(out), "--every", "1", str(src)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", *args],
        env=cli.env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        (first,) = wait_for(out, 1, proc)
        before = snapshot_times(src)
        time.sleep(2.5)  # two intervals with nothing written (our own reads are not changes)
        assert sealed(out) == [first]
        assert snapshot_times(src) == before  # watching moves no source's times, atimes included
        with (src / "logs/auth.log").open("a") as fh:
            fh.write("day two: a new login\n")
        second = wait_for(out, 2, proc)[1]
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        clear_flags(out)
    assert proc.returncode == 0, stderr
    assert stdout.split() == [str(first), str(second)]
    assert "watch ended: 2 bundle(s) sealed" in stderr
    link = dict(line.split(": ", 1) for line in (second / "bag-info.txt").read_text().splitlines())
    first_tagmanifest = (first / "tagmanifest-sha256.txt").read_bytes()
    assert link["Sealbox-Previous-Bundle"] == hashlib.sha256(first_tagmanifest).hexdigest()
    assert cli("verify", second, "--previous", first).returncode == 0
    copied = [p.name for p in (second / "data/files").rglob("*") if p.is_file()]
    assert copied == ["auth.log"]
    assert not [p for p in out.iterdir() if p.name.endswith(".incomplete")]


def test_watch_refuses_a_bad_interval_in_one_line(cli, tmp_path):
    make_key(cli)
    for every, text in (("0.5", "shorter than a second"), ("soon", "is not an interval")):
        proc = cli("watch", "--case", "C-WATCH", "--out", tmp_path, "--every", every, tmp_path)
        assert proc.returncode == 2 and text in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
