"""Crash windows (issue 13 item 9): sealbox killed with SIGKILL at each named point
(SEALBOX_TEST_KILL_AT, manifest/crashpoint.py), then run again: the work finishes, no phantom
custody event, no evidence lost, one plain line where a person must act."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from manifest.crashpoint import CRASH_POINTS, ENV
from tests.builders import assert_write_once, collect, make_key
from tests.conftest import Cli, clear_flags

CASE = "C-CRASH"


def killed_at(cli: Cli, point: str, *args: str | Path) -> None:
    """Run sealbox with the crash point armed; it must die there, by SIGKILL."""
    assert point in CRASH_POINTS
    armed = Cli(cli.home)
    armed.env[ENV] = point
    proc = armed(*args)
    assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr)


def events(bundle: Path) -> list[dict]:
    out = []
    for rel in ("custody/custody.jsonl", "custody/continuation.jsonl"):
        path = bundle / rel
        if path.is_file():
            out += [json.loads(line) for line in path.read_bytes().split(b"\n") if line]
    return out


@pytest.fixture
def source(cli, tmp_path):
    make_key(cli)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i in range(20):
        (src / "sub" / f"f{i}.txt").write_text(f"file {i}\n" * (i + 1))
    out = tmp_path / "out"
    out.mkdir()
    yield src, out
    clear_flags(out)


@pytest.mark.parametrize("point", ["seal-after-sealed-event", "seal-before-rename"])
def test_resume_finishes_a_seal_killed_after_the_sealed_event(cli, source, point):
    src, out = source
    killed_at(cli, point, "collect", "--case", CASE, "--out", out, src)
    (partial,) = out.glob("*.incomplete")
    before = events(partial)
    assert before[-1]["event"] == "sealed"
    proc = cli("collect", "--case", CASE, "--out", out, "--resume", partial, src)
    assert proc.returncode == 0, proc.stderr
    sealed = Path(proc.stdout.strip())
    assert sealed == out / partial.name.removesuffix(".incomplete") and not partial.exists()
    assert events(sealed) == before  # custody exactly as the killed run left it, ending in sealed
    verify = cli("verify", sealed)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    log = (sealed / "metadata/acquisition-log.jsonl").read_text()
    assert '"seal-resumed"' in log and '"seal-files-rewritten"' in log
    assert_write_once(sealed)


def test_resume_of_a_run_killed_before_its_first_custody_line_says_what_to_do(cli, source):
    src, out = source
    killed_at(cli, "collect-before-custody", "collect", "--case", CASE, "--out", out, src)
    (partial,) = out.glob("*.incomplete")
    proc = cli("collect", "--case", CASE, "--out", out, "--resume", partial, src)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "stopped before its collection started" in proc.stderr
    assert f"rm -r '{partial}'" in proc.stderr and "without --resume" in proc.stderr
    # Doing what it says works.
    shutil.rmtree(partial)
    assert collect(cli, out, src, case=CASE).is_dir()
