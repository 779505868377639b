"""Acquisition edge cases through the library: changed while read, vanished, limits, progress."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import collectors.acquire.worker
from agent.commands.collect import cli_sources
from collectors.acquire import Acquirer, ProgressSink, Source, Task, WorkerConfig, batches, handed_back, walk
from collectors.collection import CollectionRequest, CollectionResult, run_collection
from manifest.format.pathenc import stored_path
from manifest.osio.mountns import enter_noatime_namespace
from manifest.signing.keys import KeyStore
from manifest.verify import verify_bundle
from tests.support.builders import collect, make_key, run_on_exfat
from tests.support.env import REPO, clear_flags, require_root

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.fixture
def signer(tmp_path):
    store = KeyStore(tmp_path / "home")
    store.generate("Tess Tester", "tester", "sealbox")
    return store.load_signer(None)


def items(bundle: Path) -> dict[str, dict]:
    out = {}
    for line in (bundle / "metadata/items.jsonl").read_text().splitlines():
        item = json.loads(line)
        out[item["source_path"]] = item
    return out


def log_events(bundle: Path) -> list[dict]:
    return [json.loads(x) for x in (bundle / "metadata/acquisition-log.jsonl").read_text().splitlines()]


def source(path: Path, **kw) -> Source:
    return Source(os.fsencode(path), os.fsencode(path), "files/test", **kw)


def test_file_growing_while_read_is_changed_with_what_changed(signer, tmp_path, out_dir):
    log = tmp_path / "busy.log"
    with open(log, "wb") as f:
        f.write(os.urandom(64 << 20))
    stop = threading.Event()

    def keep_writing() -> None:
        with open(log, "ab") as f:
            while not stop.is_set():
                f.write(b"new line\n")
                f.flush()
                time.sleep(0.001)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        bundle = run_collection(CollectionRequest("C-CHG", out_dir, signer, [source(log)], workers=1)).bundle
    finally:
        stop.set()
        writer.join()
    item = items(bundle)[str(log)]
    assert item["status"] == "changed", item
    assert "changed" in item["note"] and ("size" in item["note"] or "mtime" in item["note"])
    copy = (bundle / item["stored_as"]).read_bytes()
    assert len(copy) == item["size"]  # the copy is exactly what was read, and its hash is of that
    import hashlib

    assert hashlib.sha256(copy).hexdigest() == item["sha256"]


def test_vanished_source_is_an_error_item(signer, tmp_path, out_dir):
    present = tmp_path / "present.txt"
    present.write_text("here\n")
    gone = tmp_path / "gone.txt"
    result = run_collection(CollectionRequest("C-VAN", out_dir, signer, [source(gone), source(present)]))
    found = items(result.bundle)
    assert found[str(gone)]["status"] == "error" and found[str(gone)]["error"] == "vanished"
    assert found[str(present)]["status"] == "ok"
    assert result.stats.by_status == {"error": 1, "ok": 1}


def test_limits_record_skipped_items_with_the_reason(cli, tmp_path, out_dir):
    make_key(cli)
    src = tmp_path / "src"
    (src / "cache").mkdir(parents=True)
    (src / "big.bin").write_bytes(b"x" * 5000)
    (src / "small.txt").write_text("small\n")
    (src / "old.txt").write_text("old\n")
    os.utime(src / "old.txt", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    (src / "cache/skip-me.tmp").write_text("excluded\n")
    proc = cli(
        "collect",
        "--case",
        "C-LIM",
        "--out",
        out_dir,
        "--max-file-size",
        "4K",
        "--since",
        "2021-01-01",
        "--exclude",
        "*.tmp",
        src,
        check=True,
    )
    found = items(Path(proc.stdout.strip()))
    assert found[str(src / "big.bin")]["status"] == "skipped"
    assert "exceeds the limit of 4096 bytes" in found[str(src / "big.bin")]["note"]
    assert found[str(src / "big.bin")]["stored_as"] is None
    assert found[str(src / "old.txt")]["status"] == "skipped"
    assert "before --since" in found[str(src / "old.txt")]["note"]
    assert found[str(src / "small.txt")]["status"] == "ok"
    assert str(src / "cache/skip-me.tmp") not in found
    assert cli("verify", Path(proc.stdout.strip())).returncode == 0


def test_a_big_file_is_handed_back_to_be_copied_in_a_batch_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr(collectors.acquire.worker, "BIG_FILE", 1000)
    src = tmp_path / "src"
    src.mkdir()
    for name, size in [("a", 10), ("b", 2000), ("c", 10), ("d", 3000)]:
        (src / name).write_bytes(b"x" * size)
    ids = iter(range(1, 100))
    (batch,) = batches(walk([source(src)]), lambda: next(ids), ProgressSink())
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    acquirer = Acquirer(WorkerConfig(bundle=os.fsencode(bundle), sources=[source(src)]))
    first = acquirer.run(batch)
    paths = [json.loads(line)["source_path"] for line in first.lines.splitlines()]
    assert paths == [str(src), str(src / "a")]
    assert first.alone and [task.id for task in first.leftover] == [3, 4, 5]
    assert not (bundle / stored_path(os.fsencode(src / "b"))).exists()  # not copied yet
    alone, rest = handed_back(first, workers=1)
    assert [task.id for task in alone] == [3] and [task.id for task in rest] == [4, 5]
    assert json.loads(acquirer.run(alone).lines)["sha256"] is not None  # alone, it is copied
    again = acquirer.run(rest)  # "c" copied, then "d" handed back in its turn
    assert [json.loads(line)["id"] for line in again.lines.splitlines()] == ["00000004"]
    assert again.alone and [task.id for task in again.leftover] == [5]


def test_batches_handed_back_keep_the_items_in_walk_order(signer, tmp_path, out_dir, monkeypatch):
    # Forked workers see the patched limits: many files count as big, and batches hand back
    # their rest early, so work is handed back at several depths while others run.
    monkeypatch.setattr(collectors.acquire.worker, "BIG_FILE", 4096)
    monkeypatch.setattr(collectors.acquire.worker, "BATCH_BYTES", 8192)
    src = tmp_path / "src"
    expected = {}
    for d in range(3):
        (src / f"d{d}").mkdir(parents=True)
        for i in range(40):
            data = os.urandom(100 if i % 3 else 5000 + i)
            (src / f"d{d}/f{i:02d}").write_bytes(data)
            expected[str(src / f"d{d}/f{i:02d}")] = data
    result = run_collection(CollectionRequest("C-BACK", out_dir, signer, [source(src)], workers=2))
    lines = (result.bundle / "metadata/items.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == [f"{n:08d}" for n in range(1, len(records) + 1)]
    assert [r["source_path"] for r in records if r["kind"] == "file"] == sorted(expected)
    for r in records:
        if r["kind"] == "file":
            assert (result.bundle / r["stored_as"]).read_bytes() == expected[r["source_path"]]
    report = verify_bundle(result.bundle, {signer.identity.fingerprint})
    assert report.ok, report.findings


def test_progress_sink_counts_every_item(signer, tmp_path, out_dir):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(300):
        (src / f"f{i}").write_text(str(i))

    class Counter(ProgressSink):
        files = nbytes = total = 0

        def add_total(self, files: int, nbytes: int) -> None:
            self.total += files

        def advance(self, files: int, nbytes: int) -> None:
            self.files += files
            self.nbytes += nbytes

    counter = Counter()
    run_collection(CollectionRequest("C-PRG", out_dir, signer, [source(src)]), counter)
    assert counter.files == counter.total == 301
    assert counter.nbytes == sum(len(str(i)) for i in range(300))


def test_progress_bar_on_a_terminal_and_silence_otherwise(cli, tmp_path):
    make_key(cli)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2000):
        (src / f"f{i}").write_text("x" * 100)
    out = tmp_path / "out"
    out.mkdir()
    try:
        pid, fd = pty.fork()
        if pid == 0:
            os.environ.update(cli.env)
            os.chdir(REPO)
            os.execv(
                sys.executable,
                [sys.executable, "-m", "agent", "collect", "--case", "C-TTY", "--out", str(out), str(src)],
            )
        screen = b""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
        _pid, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, screen.decode(errors="replace")
        text = screen.decode(errors="replace")
        assert "files" in text and "2001/2001" in text and "sealed:" in text
        quiet = subprocess.run(
            [sys.executable, "-m", "agent", "collect", "--case", "C-PIPE", "--out", str(out), str(src)],
            env=cli.env,
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert quiet.returncode == 0
        said = [x for x in quiet.stderr.splitlines() if not x.startswith("warning:")]
        assert said[0].startswith("sealed:")  # no progress bar in a pipe
        assert "\x1b[" not in quiet.stderr
    finally:
        clear_flags(out)


def test_item_line_is_sorted_compact_utf8_json() -> None:
    """items.jsonl lines: the bytes of json.dumps(sort_keys, compact, UTF-8), whatever the writer."""
    import json

    from manifest.format.items import empty_item, item_line

    record = empty_item()
    record.update(id="00000001", kind="file", source_path='/x/"ü"\n\t\\\x7f\u2028', size=2**63 - 1)
    record["source_path_b64"] = "L3g="
    expected = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    assert item_line(record) == expected.encode()
    record["inode"] = 2**70  # beyond 64 bits: still written, exactly
    assert json.loads(item_line(record))["inode"] == 2**70


def test_collection_writes_nothing_to_the_hosts_temp_directory(signer, tmp_path, out_dir, monkeypatch):
    # Scratch files on the examined host's own disk could overwrite deleted data that is evidence:
    # with no usable temp directory at all, a collection must still work.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-temp-dir"))
    src = tmp_path / "src"
    src.mkdir()
    for i in range(600):
        (src / f"f{i}").write_text(str(i))
    result = run_collection(CollectionRequest("C-TMP", out_dir, signer, [source(src)], workers=2))
    assert result.stats.files == 600
    assert not (tmp_path / "no-such-temp-dir").exists()
    graph = json.loads((result.bundle / "metadata/case.jsonld").read_text())["@graph"]
    action = next(n for n in graph if n["@type"] == "case-investigation:InvestigativeAction")
    assert len(action["action:result"]) == 601
    clear_flags(result.bundle)


@pytest.mark.parametrize("where", ["inside", "top"])
def test_output_under_a_source_is_never_collected(signer, tmp_path, where):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub/keep.txt").write_text("evidence\n")
    out = src / "sub/evidence" if where == "inside" else src
    out.mkdir(exist_ok=True)
    (tmp_path / "alias").symlink_to(out)  # another path to the same --out: identity, not names, decides
    result = run_collection(CollectionRequest("C-OWN", tmp_path / "alias", signer, [source(src)], workers=2))
    try:
        paths = set(items(result.bundle))
        assert str(src / "sub/keep.txt") in paths
        bundle_name = result.bundle.name + ".incomplete"
        assert not [p for p in paths if bundle_name in p or "/evidence" in p]
        (event,) = [e for e in log_events(result.bundle) if e["event"] == "output-not-collected"]
        skipped = str(out / bundle_name) if where == "top" else str(out)
        assert event["paths"] == [skipped]
    finally:
        clear_flags(result.bundle)


def test_output_on_a_sources_filesystem_is_warned_about_and_logged(cli, tmp_path, out_dir):
    make_key(cli)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    proc = cli("collect", "--case", "C-FS", "--out", out_dir, src, check=True)
    (warning,) = [x for x in proc.stderr.splitlines() if x.startswith("warning:")]
    assert f"the bundle was written to the filesystem of {src}," in warning
    log = log_events(Path(proc.stdout.strip()))
    (event,) = [e for e in log if e["event"] == "output-on-source-filesystem"]
    assert event["sources"] == [str(src)]

    other = Path(tempfile.mkdtemp(dir="/dev/shm"))  # tmpfs: another filesystem than tmp_path's
    assert other.stat().st_dev != src.stat().st_dev
    try:
        proc = cli("collect", "--case", "C-FS", "--out", other, src, check=True)
        assert "warning:" not in proc.stderr
        events = [e["event"] for e in log_events(Path(proc.stdout.strip()))]
        assert "output-on-source-filesystem" not in events
    finally:
        clear_flags(other)
        shutil.rmtree(other)


def tree_with_mount_point(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """(src holding keep.txt and an empty directory `name` to mount on, an empty out)."""
    src = tmp_path / "src"
    (src / name).mkdir(parents=True)
    (src / "keep.txt").write_text("evidence\n")
    out = tmp_path / "out"
    out.mkdir()
    return src, out


def collected_after_mount(
    mount: list[str], request: CollectionRequest, check: Callable[[CollectionResult], bool]
) -> bool:
    """Run `mount` and then the collection in a child process with a mount namespace of its own
    (the machine's mounts stay as they are); whether `check` held for the result."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _points, problem = enter_noatime_namespace([src.path for src in request.sources])
            subprocess.run(mount, check=True)
            result = run_collection(request)
            ok = check(result)
            clear_flags(result.bundle)
            code = 0 if problem is None and ok else 1
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def test_output_bind_mounted_under_another_name_is_not_collected(signer, tmp_path):
    require_root()  # a bind mount, in a mount namespace of a child process: the machine's stays as is
    src, out = tree_with_mount_point(tmp_path, "seen-as")

    def check(result: CollectionResult) -> bool:
        paths = set(items(result.bundle))
        return str(src / "keep.txt") in paths and str(src / "seen-as") not in paths

    mount = ["mount", "--bind", str(out), str(src / "seen-as")]
    assert collected_after_mount(
        mount, CollectionRequest("C-BIND", out, signer, [source(src)], workers=2), check
    )
    assert not list((src / "seen-as").iterdir())  # the bind mount never reached this namespace


def _times_in_steps(path: bytes) -> tuple[int, int, int]:
    """atime, mtime, ctime of a path too long for one stat call, reached a directory at a time."""
    *dirs, name = path.split(b"/")
    fd = os.open(b"/", os.O_PATH)
    for part in filter(None, dirs):
        fd, old = os.open(part, os.O_PATH | os.O_NOFOLLOW, dir_fd=fd), fd
        os.close(old)
    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    os.close(fd)
    return st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns


def test_a_file_hidden_deeper_than_path_max_is_collected(cli, tmp_path, out_dir):
    # Burying a file under more than PATH_MAX (4096) bytes of directories hides it from tools that
    # open whole paths; the walk goes down a directory at a time, and the copy gets a short name.
    make_key(cli)
    src = tmp_path / "src"
    src.mkdir()
    fd = os.open(src, os.O_PATH)
    for _ in range(22):
        os.mkdir(b"d" * 200, dir_fd=fd)
        fd, old = os.open(b"d" * 200, os.O_PATH, dir_fd=fd), fd
        os.close(old)
    hidden = os.open("hidden.txt", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)
    os.write(hidden, b"deep secret\n")
    os.close(hidden)
    os.close(fd)
    deep = os.fsencode(src) + (b"/" + b"d" * 200) * 22 + b"/hidden.txt"
    assert len(deep) > 4096
    before = _times_in_steps(deep)
    time.sleep(0.01)
    bundle = collect(cli, out_dir, src, case="C-DEEP")
    found = items(bundle)
    item = found[os.fsdecode(deep)]
    assert item["status"] == "ok", item
    assert (
        item["stored_as"].startswith("data/long/")
        and item["sha256"] == hashlib.sha256(b"deep secret\n").hexdigest()
    )
    assert (bundle / item["stored_as"]).read_bytes() == b"deep secret\n"
    assert all(i["status"] == "ok" for i in found.values())
    assert _times_in_steps(deep) == before
    assert cli("verify", bundle).returncode == 0
    check = subprocess.run(["sha256sum", "-c", "--quiet", "manifest-sha256.txt"], cwd=bundle, check=False)
    assert check.returncode == 0


def test_overlapping_sources_give_each_path_once(signer, tmp_path, out_dir):
    # A file, then its directory, then the parent, then the file again: one item each, no error.
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for rel in ("a.txt", "sub/b.txt", "sub/c.txt"):
        (src / rel).write_text(rel)
    order = [src / "sub/b.txt", src / "sub", src, src / "a.txt", src / "sub/c.txt"]
    result = run_collection(CollectionRequest("C-OVER", out_dir, signer, [source(p) for p in order]))
    lines = (result.bundle / "metadata/items.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    paths = [r["source_path"] for r in records]
    assert sorted(paths) == sorted(
        map(str, [src, src / "sub", *(src / r for r in ("a.txt", "sub/b.txt", "sub/c.txt"))])
    )
    assert {r["status"] for r in records} == {"ok"}


def test_a_source_inside_a_limited_one_is_still_collected_whole(signer, tmp_path, out_dir):
    # A directory walked to a depth limit does not cover what a later source names below it; a
    # file both reach is copied once, and the second time it is a skipped item that says why.
    src = tmp_path / "src"
    (src / "sub/deeper").mkdir(parents=True)
    (src / "sub/f.txt").write_text("f")
    (src / "sub/deeper/g.txt").write_text("g")
    sources = [source(src, max_depth=2), source(src / "sub")]
    result = run_collection(CollectionRequest("C-DEPTH", out_dir, signer, sources))
    records = [json.loads(line) for line in (result.bundle / "metadata/items.jsonl").read_text().splitlines()]
    by_path: dict[str, list[dict]] = {}
    for r in records:
        by_path.setdefault(r["source_path"], []).append(r)
    assert [r["status"] for r in by_path[str(src / "sub/deeper/g.txt")]] == ["ok"]  # not lost
    first, again = by_path[str(src / "sub/f.txt")]
    assert first["status"] == "ok" and first["stored_as"]
    assert again["status"] == "skipped" and again["stored_as"] is None
    assert again["note"] == "already collected in this bundle through another source"


def test_sparse_files_are_copied_sparse_and_hashed_around_their_holes(cli, tmp_path, out_dir):
    # lastlog is hundreds of GB of holes where user ids are large: a dense copy could fill the
    # evidence disk. The copy keeps the holes and reads back byte for byte the same.
    make_key(cli)
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "lastlog", "wb") as f:  # data, a 40 MiB hole, data not on a boundary, a hole to the end
        f.write(b"head" * 1000)
        f.seek(40 << 20)
        f.write(os.urandom(3 << 20))
        f.truncate(100 << 20)
    (src / "zeros.img").write_bytes(bytes(5 << 20))  # dense zeros: stored as a hole too
    expected = {
        name: hashlib.sha256((src / name).read_bytes()).hexdigest() for name in ("lastlog", "zeros.img")
    }
    bundle = collect(cli, out_dir, src, case="C-SPARSE")
    found = items(bundle)
    for name, digest in expected.items():
        item = found[str(src / name)]
        copy = bundle / item["stored_as"]
        assert item["status"] == "ok" and item["sha256"] == digest
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == digest
        assert copy.stat().st_size == (src / name).stat().st_size
        assert copy.stat().st_blocks * 512 <= (5 << 20), name  # holes, not written zeros
    assert cli("verify", bundle).returncode == 0
    check = subprocess.run(["sha256sum", "-c", "--quiet", "manifest-sha256.txt"], cwd=bundle, check=False)
    assert check.returncode == 0


def test_names_alike_where_case_or_accents_are_folded_are_set_apart(tmp_path):
    src = tmp_path / "src"
    (src / "Dir").mkdir(parents=True)
    (src / "dir").mkdir()
    for name in ("Dir/x", "dir/x", "café.txt", "cafe\u0301.txt", "readme", "README", "other"):
        (src / name).write_text(name)
    found = {f.path: f.apart for f in walk([source(src)])}
    apart = sorted(os.fsdecode(p)[len(str(src)) + 1 :] for p, flag in found.items() if flag)
    # Sorted order decides which of a pair keeps its place: the first.
    assert apart == sorted(["dir", "dir/x", "readme", "café.txt"])


def test_names_differing_only_in_case_survive_exfat_usb_sticks(cli, tmp_path, out_dir):
    # Most USB sticks are exFAT, which ignores case, as do Windows and macOS: `report.txt` would
    # overwrite, or be taken for, `Report.txt`. A bundle made elsewhere is copied onto real exFAT
    # whole and still verifies, and one written straight to it, from sources that collide only
    # there, loses nothing.
    make_key(cli)
    src = tmp_path / "src"
    (src / "Logs").mkdir(parents=True)
    (src / "logs").mkdir()
    contents = {"Report.txt": "upper", "report.txt": "lower", "Logs/a.txt": "A", "logs/a.txt": "a"}
    for rel, text in contents.items():
        (src / rel).write_text(text)
    made = collect(cli, out_dir, src, case="C-CASE")  # on ext4: siblings set apart all the same
    records = items(made)
    assert records[str(src / "report.txt")]["stored_as"].startswith("data/long/")
    assert records[str(src / "logs/a.txt")]["stored_as"].startswith("data/long/")
    assert records[str(src / "Report.txt")]["stored_as"] == stored_path(os.fsencode(src / "Report.txt"))
    apart = " ".join(str(src / rel) for rel in ("Report.txt", "report.txt", "Logs", "logs"))
    agent = f"{sys.executable} -m agent"
    proc = run_on_exfat(
        tmp_path,
        f'cd {REPO} && cp -r {made} "$STICK/copied" && {agent} verify "$STICK/copied" >/dev/null && '
        f'{agent} collect --case C-EXFAT --out "$STICK" --json {apart} >{tmp_path}/summary && '
        f'{agent} verify "$STICK"/C-EXFAT_* >/dev/null && '
        f'cd "$STICK"/C-EXFAT_* && sha256sum -c --quiet manifest-sha256.txt && cat metadata/items.jsonl',
        cli.env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "summary").read_text())["case_collisions"] == 2
    assert "warning: the output filesystem ignores case" in proc.stderr
    records = {r["source_path"]: r for r in map(json.loads, proc.stdout.splitlines())}
    for rel in contents:
        assert records[str(src / rel)]["status"] == "ok", records[str(src / rel)]


def test_pseudo_filesystems_are_items_but_never_walked(cli, out_dir):
    # /proc holds the kernel's live state (/proc/kcore never ends): a source on it, or one met
    # on the way, is recorded as an item and not descended into.
    make_key(cli)
    proc = cli("collect", "--case", "C-PROC", "--out", out_dir, "--json", "/proc")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["not_walked"] == ["/proc"] and summary["items"] == 1
    assert "warning: not walked: /proc: pseudo filesystems" in proc.stderr
    bundle = Path(summary["bundle"])
    assert list(items(bundle)) == ["/proc"]
    log = (bundle / "metadata/acquisition-log.jsonl").read_text()
    assert '"event": "pseudo-filesystem-not-walked"' in log


def test_a_pseudo_filesystem_mounted_inside_a_source_is_not_walked(signer, tmp_path):
    require_root()  # a proc mount, in a mount namespace of a child process: the machine's stays as is
    src, out = tree_with_mount_point(tmp_path, "p")

    def check(result: CollectionResult) -> bool:
        expected = {str(src), str(src / "keep.txt"), str(src / "p")}
        return set(items(result.bundle)) == expected and result.stats.not_walked == [str(src / "p")]

    mount = ["mount", "-t", "proc", "proc", str(src / "p")]
    assert collected_after_mount(
        mount, CollectionRequest("C-PROC2", out, signer, [source(src)], workers=2), check
    )
    assert not list((src / "p").iterdir())  # the proc mount never reached this namespace


@pytest.mark.parametrize("swap", ["symlink", "directory"])
def test_a_directory_swapped_after_listing_is_not_followed(tmp_path, swap):
    # Malware on the host could swap a directory between the walk and the copy; the copy must not
    # then come from elsewhere under the listed path.
    src = tmp_path / "src"
    (src / "logs").mkdir(parents=True)
    (src / "logs/auth.log").write_text("the real log\n")
    (src / "top.txt").write_text("top\n")
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "auth.log").write_text("planted\n")
    ids = iter(range(1, 100))
    (batch,) = batches(walk([source(src)]), lambda: next(ids), ProgressSink())
    (src / "logs").rename(tmp_path / "moved-away")
    if swap == "symlink":
        (src / "logs").symlink_to(decoy)
    else:
        decoy.rename(src / "logs")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    acquirer = Acquirer(WorkerConfig(bundle=os.fsencode(bundle), sources=[source(src)]))
    lines = acquirer.run(batch).lines.splitlines()
    found = {i["source_path"]: i for i in map(json.loads, lines)}
    log = found[str(src / "logs/auth.log")]
    assert log["status"] == "error"
    assert "replaced" in log["error"] and "not followed" in log["error"]
    assert log["stored_as"] is None
    assert found[str(src / "top.txt")]["status"] == "ok"
    copies = [p.read_text() for p in bundle.rglob("*") if p.is_file()]
    assert copies == ["top\n"]


def test_the_walk_does_not_descend_through_a_directory_swapped_after_listing(tmp_path):
    src = tmp_path / "src"
    (src / "a/b").mkdir(parents=True)
    (src / "a/b/real.txt").write_text("real\n")
    (tmp_path / "decoy/b").mkdir(parents=True)
    (tmp_path / "decoy/b/planted.txt").write_text("planted\n")
    errors: list[tuple[bytes, str]] = []
    found = walk([source(src)], lambda path, why: errors.append((path, why)))
    seen = []
    tasks = []
    for number, f in enumerate(found, start=1):
        seen.append(f.path)
        tasks.append(Task(number, f.path, f.original, f.source, f.listed_from, f.apart))
        if f.path == os.fsencode(src / "a/b"):  # a is listed, b not yet: swap a for a symlink
            (src / "a").rename(tmp_path / "moved-away")
            (src / "a").symlink_to(tmp_path / "decoy")
    assert os.fsencode(src / "a/b/planted.txt") not in seen
    # The walk lists b through the fd of the very `a` it listed (moved away, not the symlink),
    # so it stays in the real tree and reports nothing; a worker reaching real.txt by its path
    # meets the symlink and refuses it.
    assert os.fsencode(src / "a/b/real.txt") in seen and errors == []
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    acquirer = Acquirer(WorkerConfig(bundle=os.fsencode(bundle), sources=[source(src)]))
    items = {i["source_path"]: i for i in map(json.loads, acquirer.run(tasks).lines.splitlines())}
    real = items[str(src / "a/b/real.txt")]
    assert real["status"] == "error" and "replaced" in real["error"] and real["stored_as"] is None
    assert not [p for p in bundle.rglob("*") if p.is_file()]


def _chain(root: Path, levels: int) -> Path:
    """`levels` nested directories `ddddd`, a small file in each: a tree made to be deep."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(levels):
            out = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            os.write(out, b"level %d\n" % level)
            os.close(out)
            os.mkdir("ddddd", dir_fd=fd)
            below = os.open("ddddd", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
    finally:
        os.close(fd)
    return root


def _remove_deep(path: Path) -> None:
    """Remove a tree deeper than shutil.rmtree can recurse (pytest would fail cleaning it up):
    down and up again through `..`, one directory fd open at a time."""
    names: list[str] = []
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    while True:
        entries = list(os.scandir(fd))
        sub = next((e.name for e in entries if e.is_dir(follow_symlinks=False)), None)
        if sub is not None:
            below = os.open(sub, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = below
            names.append(sub)
            continue
        for entry in entries:
            os.unlink(entry.name, dir_fd=fd)
        if not names:
            break
        up = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = up
        os.rmdir(names.pop(), dir_fd=fd)
    os.close(fd)
    path.rmdir()


_PATH_CALLS = ("open", "lstat", "stat", "mkdir", "chmod", "scandir", "listdir", "utime", "unlink", "readlink")


def _path_work(run) -> int:
    """Path components the kernel is asked to resolve while `run()` runs in this process: one for
    an fd or a name relative to an open directory, one per level for a path from the root."""
    total = 0

    def counted(real):
        def call(*args, **kwargs):
            nonlocal total
            arg = os.fspath(args[0]) if args and isinstance(args[0], (str, bytes, os.PathLike)) else None
            sep = "/" if isinstance(arg, str) else b"/"
            total += max(1, len([p for p in arg.split(sep) if p])) if arg is not None else 1
            return real(*args, **kwargs)

        return call

    real = {name: getattr(os, name) for name in _PATH_CALLS}
    for name, function in real.items():
        setattr(os, name, counted(function))
    try:
        run()
    finally:
        for name, function in real.items():
            setattr(os, name, function)
    return total


def test_collection_work_grows_linearly_with_the_depth_of_the_tree(cli, tmp_path, request):
    """A deep tree (a way to hide files) used to cost a walk of the whole path for each level,
    and past PATH_MAX one open per component: 2,500 levels took 5.9 s, 5,000 levels 31 s. The
    work is counted, not timed (scripts/bench-depth times it): four times as deep must cost
    about four times as much, where the square would cost sixteen."""
    make_key(cli)
    signer = KeyStore(cli.home).load_signer(None)
    work = {}
    request.addfinalizer(
        lambda: [_remove_deep(p) for p in tmp_path.iterdir() if p.name[:3] in ("dee", "out")]
    )
    for levels in (200, 800):  # 800 levels of `ddddd/` is past PATH_MAX
        src = _chain(tmp_path / f"deep{levels}", levels)
        out = tmp_path / f"out{levels}"
        out.mkdir()
        collection = CollectionRequest(
            case="C-DEEP",
            out_dir=out,
            signer=signer,
            sources=cli_sources((str(src),), (), None, None),
            workers=1,
            immutable=False,
        )
        done: list[CollectionResult] = []
        work[levels] = _path_work(lambda c=collection, d=done: d.append(run_collection(c)))
        assert done[0].stats.by_status == {"ok": 2 * levels + 1}, done[0].stats
        assert cli("verify", done[0].bundle).returncode == 0
    assert work[800] < 7 * work[200], work
