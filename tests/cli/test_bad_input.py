"""Bad input: one clear line, a non-zero exit, no traceback, and evidence never lost or altered."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from agent.commands.collect import warn
from collectors.acquire import AcquireStats, Source
from collectors.collection import CollectionRequest, CollectionResult, run_collection
from manifest.errors import SealboxError
from manifest.format.timefmt import compact_utc
from manifest.signing.keys import KeyStore
from tests.support.builders import collect, make_key, snapshot_times
from tests.support.env import REPO, clear_flags, require_root


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert text in proc.stderr, proc.stderr


def test_path_that_does_not_exist(cli, out_dir):
    make_key(cli)
    proc = cli("collect", "--case", "C-1", "--out", out_dir, out_dir.parent / "no-such-file")
    one_line_error(proc, 2, "does not exist")
    assert list(out_dir.iterdir()) == []


def test_verify_names_a_bundle_that_is_not_there(cli, tmp_path):
    one_line_error(cli("verify", tmp_path / "no-such-bundle"), 2, "no-such-bundle does not exist")
    (tmp_path / "a-file").write_text("x")
    one_line_error(cli("verify", tmp_path / "a-file"), 2, "a-file is not a directory")


def test_output_directory_missing_or_a_file(cli, tmp_path):
    make_key(cli)
    src = tmp_path / "f"
    src.write_text("x")
    one_line_error(cli("collect", "--case", "C-1", "--out", tmp_path / "nope", src), 2, "does not exist")
    one_line_error(cli("collect", "--case", "C-1", "--out", src, src), 2, "")


def test_existing_bundle_is_never_overwritten(cli, tmp_path, out_dir):
    make_key(cli)
    store = KeyStore(cli.home)
    src = tmp_path / "f"
    src.write_text("x")
    source = Source(os.fsencode(src), os.fsencode(src), "files/test")
    request = CollectionRequest("C-1", out_dir, store.load_signer(None), [source], host="h")
    first = run_collection(request).bundle
    items_before = (first / "metadata/items.jsonl").read_bytes()
    # Same case and host, at once: names have one-second resolution, so the second run takes the
    # next second's name and leaves the first bundle as it was.
    second = run_collection(request).bundle
    assert second != first and second.is_dir()
    assert (first / "metadata/items.jsonl").read_bytes() == items_before
    # Every name it could take exists: it refuses rather than reuse one.
    now = time.time_ns()
    for ahead in range(6):
        name = f"C-1_h_{compact_utc(now + ahead * 1_000_000_000)}.incomplete"
        (out_dir / name).mkdir(exist_ok=True)
    with pytest.raises(SealboxError, match="already exists"):
        run_collection(request)


def test_bad_arguments_exit_2(cli, tmp_path):
    make_key(cli)
    src = tmp_path / "f"
    src.write_text("x")
    one_line_error(cli("collect", "--case", "a/b", "--out", tmp_path, src), 2, "case id")
    one_line_error(
        cli("collect", "--case", "C", "--out", tmp_path, "--max-file-size", "lots", src), 2, "not a size"
    )
    one_line_error(
        cli("collect", "--case", "C", "--out", tmp_path, "--since", "yesterday", src), 2, "not a date"
    )
    assert cli("collect", "--case", "C", "--out", tmp_path).returncode == 2
    assert cli("no-such-command").returncode == 2


def sparse_disks(root: Path) -> Path:
    """4 GiB in four sparse files: quick to make and to copy, slow enough to read and hash."""
    root.mkdir()
    for i in range(4):
        with open(root / f"disk{i}.img", "wb") as f:
            f.truncate(1 << 30)
    return root


def started(cli, *args: str) -> subprocess.Popen[str]:
    """`sealbox ARGS` as a subprocess, running on."""
    return subprocess.Popen(
        [sys.executable, "-m", "agent", *args],
        env=cli.env,
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def collecting(cli, tmp_path: Path, out_dir: Path, case: str) -> tuple[subprocess.Popen[str], list[str]]:
    """`sealbox collect` of `sparse_disks` as a subprocess, returned once it is copying; and its
    arguments."""
    make_key(cli)
    src = sparse_disks(tmp_path / "src")
    args = ["collect", "--case", case, "--out", str(out_dir), str(src)]
    proc = started(cli, *args)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list(out_dir.glob("*.incomplete/data/files/*")):
        time.sleep(0.05)
    return proc, args


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_mid_run_leaves_only_incomplete(cli, tmp_path, out_dir, sig):
    # SIGTERM (kill, a service stop) is an interruption like Ctrl-C: one line, never a traceback.
    proc, _args = collecting(cli, tmp_path, out_dir, "C-INT")
    time.sleep(0.3)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (stdout, stderr)
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "interrupted" in stderr and ".incomplete" in stderr and "Traceback" not in stderr
    names = [p.name for p in out_dir.iterdir()]
    assert len(names) == 1 and names[0].endswith(".incomplete"), names
    assert cli("verify", out_dir / names[0]).returncode == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_verify_says_so_in_one_line_and_leaves_no_worker(cli, tmp_path, out_dir, sig):
    make_key(cli)
    bundle = collect(cli, out_dir, sparse_disks(tmp_path / "disks"), case="C-VINT")
    proc = started(cli, "verify", str(bundle))  # it hashes 4 GiB of zeros (holes, from memory)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(psutil.Process(proc.pid).children()) < 2:
        time.sleep(0.02)
    workers = psutil.Process(proc.pid).children()
    time.sleep(0.2)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert stderr.strip() == "sealbox: interrupted", stderr
    _gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, alive
    assert cli("verify", bundle).returncode == 0  # and the bundle is untouched


def test_workers_leave_quietly_when_the_collection_is_killed_outright(cli, tmp_path, out_dir):
    proc, _args = collecting(cli, tmp_path, out_dir, "C-KILL9")
    workers = psutil.Process(proc.pid).children()
    assert workers
    proc.kill()
    _stdout, stderr = proc.communicate(timeout=60)  # the workers hold the pipe until they are gone
    assert "Traceback" not in stderr, stderr
    _gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, alive


def test_a_killed_worker_stops_the_run_with_one_line_and_it_can_be_resumed(cli, tmp_path, out_dir):
    # The out-of-memory killer may take a worker process; the run must say so, not wait for it.
    proc, args = collecting(cli, tmp_path, out_dir, "C-KILL")
    parent = psutil.Process(proc.pid)
    workers = [c for c in parent.children() if c.cmdline() == parent.cmdline()]
    assert workers, "no worker process found"
    workers[0].kill()
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, (stdout, stderr)
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert "worker process ended before its work was done (killed by signal 9" in stderr, stderr
    (partial,) = out_dir.glob("*.incomplete")
    assert f"partial bundle left at {partial}" in stderr
    resumed = cli(*args, "--resume", partial)
    assert resumed.returncode == 0, resumed.stderr
    sealed = out_dir / partial.name.removesuffix(".incomplete")
    assert cli("verify", sealed).returncode == 0
    assert len(list((sealed / "data/files").rglob("disk*.img"))) == 4


def test_a_copy_cut_short_is_an_error_item_and_the_bundle_still_verifies(cli, tmp_path, out_dir):
    # A write refused part way (here a file size limit, as FAT32's 4 GiB; a read error on a
    # failing disk is alike) must not leave a partial copy that no item records.
    make_key(cli)
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(3 << 20))
    (src / "small.txt").write_text("small\n")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, 2 << 20))

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "collect",
            "--case",
            "C-FBIG",
            "--out",
            str(out_dir),
            "--json",
            str(src),
        ],
        env=cli.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    bundle = Path(json.loads(proc.stdout)["bundle"])
    records = {
        r["source_path"]: r
        for r in map(json.loads, (bundle / "metadata/items.jsonl").read_text().splitlines())
    }
    big = records[str(src / "big.bin")]
    assert big["status"] == "error" and big["stored_as"] is None
    assert big["error"] == "too large for the output filesystem (FAT32 holds at most 4 GiB a file)"
    assert records[str(src / "small.txt")]["status"] == "ok"
    assert not list((bundle / "data/files").rglob("big.bin"))
    assert cli("verify", bundle).returncode == 0


def test_full_disk_stops_with_clear_error_and_source_untouched(cli, tmp_path):
    require_root()
    make_key(cli)
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(4 << 20))
    before = snapshot_times(src)
    small = tmp_path / "small-disk"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        proc = cli("collect", "--case", "C-FULL", "--out", small, src)
        assert proc.returncode == 1, proc.stderr
        assert "No space left on device" in proc.stderr and "nothing was sealed" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert all(p.name.endswith(".incomplete") for p in small.iterdir())
    finally:
        clear_flags(small)
        subprocess.run(["umount", str(small)], check=False)
    assert snapshot_times(src) == before


@pytest.fixture
def world_traversable_tmp():
    """pytest's own tmp dirs are 0700 under root: an unprivileged child could not reach them."""
    path = Path(tempfile.mkdtemp(prefix="sealbox-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    clear_flags(path)
    shutil.rmtree(path, ignore_errors=True)


def test_unreadable_source_is_an_error_item_and_the_run_goes_on(world_traversable_tmp):
    """Runs the library in a child that dropped to `nobody`: root can read everything."""
    require_root()
    tmp_path = world_traversable_tmp
    src, out = tmp_path / "src", tmp_path / "out"
    for d in (src, out):
        d.mkdir()
    (src / "readable.txt").write_text("ok\n")
    secret = src / "secret.txt"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    locked = src / "locked-dir"
    locked.mkdir(mode=0o700)
    (locked / "inside.txt").write_text("x")
    os.chown(out, 65534, 65534)
    store = KeyStore(tmp_path / "home")
    store.generate("N", "r", "o")
    signer = store.load_signer(None)
    request = CollectionRequest(
        "C-PERM", out, signer, [Source(os.fsencode(src), os.fsencode(src), "files/test")]
    )
    # The child cannot read this Python's install under /root: a first run here imports all it needs.
    warm = tmp_path / "warm"
    warm.mkdir()
    run_collection(CollectionRequest("C-WARM", warm, signer, request.sources))
    clear_flags(warm)

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: become nobody, collect, report the bundle path
        code = 1
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            result = run_collection(request)
            assert result.stats.unlisted_dirs == [f"{locked}: Permission denied"]
            os.write(write_end, str(result.bundle).encode())
            code = 0
        except BaseException as exc:
            os.write(2, f"child failed: {exc!r}\n".encode())
        finally:
            os._exit(code)
    os.close(write_end)
    bundle = Path(os.read(read_end, 4096).decode())
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    items = {
        json.loads(line)["source_path"]: json.loads(line)
        for line in (bundle / "metadata/items.jsonl").read_text().splitlines()
    }
    assert items[str(secret)]["status"] == "error"
    assert items[str(secret)]["error"] == "permission denied"
    assert items[str(src / "readable.txt")]["status"] == "ok"
    assert str(locked / "inside.txt") not in items
    log = (bundle / "metadata/acquisition-log.jsonl").read_text()
    assert "directory-unreadable" in log and "locked-dir" in log
    assert "noatime-not-permitted" in log  # nobody does not own the sources


def test_what_was_not_collected_is_said_after_the_run(capsys):
    # The responder learns on the terminal, not only from the log, what the bundle lacks.
    stats = AcquireStats(unlisted_dirs=["/home/a/locked: Permission denied", "/x: Input/output error"])
    stats.not_walked, stats.case_collisions = ["/proc"], 2
    warn(CollectionResult(Path("/out/B"), "id", stats, []))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == (
        "warning: nothing inside these directories was collected, they could not be listed: "
        "/home/a/locked: Permission denied and 1 more (see directory-unreadable in "
        "metadata/acquisition-log.jsonl)"
    )
    assert lines[1].startswith("warning: not walked: /proc: pseudo filesystems")
    assert lines[2].startswith("warning: the output filesystem ignores case: 2 copies")


def test_resumed_names_and_json_summary(cli, tmp_path, out_dir):
    make_key(cli)
    src = tmp_path / "f.txt"
    src.write_text("hello")
    proc = cli("collect", "--case", "C-J", "--out", out_dir, "--json", src, check=True)
    summary = json.loads(proc.stdout)
    assert summary["payload_files"] == 1 and summary["by_status"] == {"ok": 1}
    assert Path(summary["bundle"]).is_dir()
    bundle = collect(cli, out_dir, src, case="C-K")
    assert bundle.name.startswith("C-K_")
