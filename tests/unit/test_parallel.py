"""Worker processes: results in order under every start method, and a stop (Ctrl-C, SIGTERM, an
error, a killed worker, the main process killed) is one error, never a hang or a process left."""

from __future__ import annotations

import ast
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from manifest.errors import SealboxError, UsageError, WorkerLost
from manifest.osio import parallel
from manifest.osio.parallel import ordered_map, start_process
from manifest.osio.spool import Spool
from tests.support.env import REPO
from tests.support.parallel_work import (
    _die_on_13,
    _echo,
    _fail,
    _fail_slow_first,
    _first,
    _reverse,
    _slow,
    _spool_put,
    _square,
    _write,
)

# fork is the fast default on Linux; spawn and forkserver (Python 3.14's default on Linux) must
# be as correct, only slower to start (a second or more each: the unit tests stay fast by
# running each guarantee under fork and one other method).
HAS = multiprocessing.get_all_start_methods()
FORK_AND_SPAWN = [m for m in ("fork", "spawn") if m in HAS]
FORK_AND_FORKSERVER = [m for m in ("fork", "forkserver") if m in HAS]


@pytest.mark.parametrize("method", [m for m in ("fork", "spawn", "forkserver") if m in HAS])
def test_ordered_map_keeps_input_order_across_workers(method: str) -> None:
    assert list(ordered_map(_square, range(50), 3, window=2, method=method)) == [n * n for n in range(50)]


def test_ordered_map_puts_handed_back_batches_right_after_their_own() -> None:
    # A batch may hand work back (collectors.acquire does, for big files); the pieces go right
    # after it in the output, at any depth, however the results arrive.
    def more(result: list[int]) -> list[list[int]]:
        return [result[1:2], result[2:]] if len(result) > 1 else []

    batches = [[n, n + 100, n + 200] for n in range(20)]
    for workers in (1, 3):
        out = list(ordered_map(_first, batches, workers, window=2, more=more))
        assert out == [x for n in range(20) for x in ([n, n + 100, n + 200], [n + 100], [n + 200])]


def test_workers_started_ahead_are_fed_from_another_thread() -> None:
    # verify forks its workers before the rest of its work, and feeds them from a thread (the
    # supervisor is the one ordered_map uses, tested under every start method above).
    import threading

    pool = parallel.Workers(_square, 2)
    out: list[int] = []
    thread = threading.Thread(target=lambda: out.extend(ordered_map(_square, range(30), 0, pool=pool)))
    thread.start()
    thread.join(60)
    assert out == [n * n for n in range(30)]
    other = parallel.Workers(_square, 1)
    with pytest.raises(ValueError, match="another function"):
        list(ordered_map(_first, [[1]], 2, pool=other))
    other.stop()


def test_workers_started_ahead_and_terminated_end_their_map_with_one_error() -> None:
    import threading

    before = {p.pid for p in psutil.Process().children()}
    pool = parallel.Workers(_slow, 2)
    children = [p for p in psutil.Process().children() if p.pid not in before]
    assert len(children) == 2
    errors: list[BaseException] = []

    def feed() -> None:
        try:
            list(ordered_map(_slow, range(100), 2, pool=pool))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=feed)
    thread.start()
    time.sleep(0.3)
    pool.terminate()
    thread.join(10)
    assert not thread.is_alive()
    assert [type(e) for e in errors] == [WorkerLost]
    _gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive


def test_big_tasks_and_results_cross_without_a_deadlock() -> None:
    # Tasks and results far larger than a pipe holds, both ways at once: the main process never
    # blocks writing a task while a worker blocks writing a result.
    batches = [bytes([n]) * (3 << 20) for n in range(12)]
    out = list(ordered_map(_reverse, batches, 2, window=4))
    assert out == [b[::-1] for b in batches]


@pytest.mark.parametrize("method", FORK_AND_SPAWN)
def test_a_killed_worker_is_an_error_not_a_wait_for_good(method: str) -> None:
    # Its batch never comes back: without a check the caller waited for it for ever.
    start = time.monotonic()
    with pytest.raises(WorkerLost, match="killed by signal 9"):
        list(ordered_map(_die_on_13, range(40), 2, method=method))
    assert time.monotonic() - start < 30


def _script(body: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`body` in a child Python with a time limit, so a regression fails, not hangs."""
    code = "import sys; sys.path.insert(0, '.')\n" + body
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_a_worker_killed_while_waiting_for_work_is_an_error() -> None:
    proc = _script(
        "from manifest.errors import WorkerLost\n"
        "from manifest.osio.parallel import ordered_map\n"
        "from tests.support.parallel_work import _kill_the_idle_sibling\n"
        "try:\n"
        "    list(ordered_map(_kill_the_idle_sibling, [1], 2))\n"
        "except WorkerLost as exc:\n"
        "    print(exc.message)\n"
    )
    assert "a worker process ended before its work was done (killed by signal 9" in proc.stdout, proc.stderr
    assert proc.stderr == ""


def test_stopping_early_while_workers_wait_for_work_never_hangs() -> None:
    # An interrupt after the first result stops the workers while they wait for the next task
    # (under multiprocessing.Pool that once waited for good, one stop in ten). Thirty stops in a
    # child process with a time limit.
    proc = _script(
        "from manifest.osio.parallel import ordered_map\n"
        "from tests.support.parallel_work import _echo\n"
        "for _ in range(30):\n"
        "    results = ordered_map(_echo, range(10_000), 2, window=8)\n"
        "    next(results)\n"
        "    results.close()\n"
        "print('stopped 30 times')\n",
        timeout=120,
    )
    assert proc.stdout.strip() == "stopped 30 times", proc.stderr
    assert proc.stderr == ""


def test_a_worker_killed_while_sending_a_result_is_an_error_and_prints_nothing() -> None:
    # Half a result in the pipe: the main process reports the lost worker, no reader chokes on
    # the half message, and nothing is printed.
    proc = _script(
        "from manifest.errors import WorkerLost\n"
        "from manifest.osio.parallel import ordered_map\n"
        "from tests.support.parallel_work import _big_then_killed\n"
        "try:\n"
        "    list(ordered_map(_big_then_killed, range(6), 2))\n"
        "except WorkerLost as exc:\n"
        "    print(exc.message)\n"
    )
    assert "a worker process ended before its work was done (killed by signal 9" in proc.stdout, proc.stderr
    assert proc.stderr == ""


def test_a_worker_exception_is_raised_here_as_one_error() -> None:
    method = "fork" if "fork" in HAS else None  # pickled both ways under any start method
    with pytest.raises(SealboxError) as caught:
        list(ordered_map(_fail, range(8), 2, method=method))
    assert caught.value.diagnostics() == "batch 7 cannot be read (check the disk)"
    assert "raised in a worker process" in "".join(caught.value.__notes__)  # shown with -v
    # One that cannot cross a pipe still says what it was.
    with pytest.raises(RuntimeError) as stand_in:
        list(ordered_map(_fail, [8, 9, 10], 2, method=method))
    assert str(stand_in.value) == "_Unpicklable: batch 9 holds a lock"


def test_a_worker_exception_prints_nothing_but_the_callers_line() -> None:
    proc = _script(
        "from manifest.osio.parallel import ordered_map\n"
        "from tests.support.parallel_work import _fail\n"
        "try:\n"
        "    list(ordered_map(_fail, range(20), 2))\n"
        "except Exception as exc:\n"
        "    print(exc)\n"
    )
    assert proc.stdout == "batch 7 cannot be read\n" and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("method", FORK_AND_SPAWN)
def test_the_error_raised_is_the_first_in_input_order_not_the_first_to_arrive(method: str) -> None:
    # Batch 1 fails at once, batch 0 half a second later: a loop over the batches would have
    # stopped at batch 0, so that is the error the caller sees, whichever worker was faster.
    with pytest.raises(SealboxError, match="batch 0 cannot be read"):
        list(ordered_map(_fail_slow_first, range(8), 2, method=method))


def test_workers_stopped_while_they_start_print_nothing() -> None:
    # The first batch fails at once, so the workers are stopped (SIGTERM) while the others are
    # still starting: a worker that had not yet set its own handlers ran the CLI's (SIGTERM as
    # KeyboardInterrupt) and printed a traceback, as `verify` once did when its streamed check
    # gave up at once.
    proc = _script(
        "import signal\n"
        "from manifest.osio.parallel import ordered_map\n"
        "from tests.support.parallel_work import _interrupt, _refuse\n"
        "signal.signal(signal.SIGTERM, _interrupt)  # as the CLI does\n"
        "for _ in range(10):\n"
        "    try:\n"
        "        list(ordered_map(_refuse, range(10), 2))\n"
        "    except ValueError:\n"
        "        pass\n"
        "print('stopped 10 times')\n"
    )
    assert proc.stdout == "stopped 10 times\n" and proc.stderr == "", proc.stderr


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a process from /proc; None once it is gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return None if fields[0] in "ZX" else (int(fields[1]), fields[19])


def _descendants(pid: int) -> dict[int, str]:
    """Every live descendant of `pid` with its start time, read from /proc."""
    parents: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            parents.setdefault(st[0], []).append((int(entry.name), st[1]))
    out: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child, started in parents.get(todo.pop(), []):
            out[child] = started
            todo.append(child)
    return out


def _still_running(procs: dict[int, str], timeout: float) -> list[int]:
    """Those of `procs` (pid: start time) still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid, started in procs.items() if (st := _stat(pid)) is not None and st[1] == started]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _running_map(method: str) -> tuple[subprocess.Popen[str], dict[int, str]]:
    """A child process in the middle of an ordered_map over slow batches, and its descendants."""
    code = (
        "import signal, sys; sys.path.insert(0, '.')\n"
        "from manifest.osio.parallel import ordered_map\n"
        "from tests.support.parallel_work import _slow, _interrupt\n"
        "signal.signal(signal.SIGTERM, _interrupt)  # as the CLI does\n"
        "try:\n"
        f"    for n in ordered_map(_slow, range(1000), 2, method={method!r}):\n"
        "        print('result', n, flush=True)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a process group of its own, as a terminal gives a command
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("result"), proc.stderr
    workers = _descendants(proc.pid)
    assert len(workers) >= 2, workers
    return proc, workers


@pytest.mark.parametrize(
    ("method", "sig"),
    [(m, signal.SIGINT) for m in FORK_AND_FORKSERVER] + [(FORK_AND_SPAWN[-1], signal.SIGTERM)],
)
def test_an_interrupt_stops_every_worker_and_leaves_no_process(method: str, sig: signal.Signals) -> None:
    proc, workers = _running_map(method)
    if sig == signal.SIGINT:  # Ctrl-C goes to the whole process group: workers ignore it
        os.killpg(proc.pid, signal.SIGINT)
    else:  # a service stop: the main process alone
        proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert stdout.splitlines()[-1] == "interrupted" and stderr == "", stderr
    assert _still_running(workers, 10) == [], "a worker outlived the interrupted map"


@pytest.mark.parametrize("method", FORK_AND_FORKSERVER)
def test_workers_leave_when_the_main_process_is_killed_outright(method: str) -> None:
    proc, workers = _running_map(method)
    proc.kill()
    proc.communicate(timeout=30)
    assert _still_running(workers, 15) == [], "a worker outlived the killed main process"


def test_start_process_runs_its_target_under_spawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parallel.START_METHOD_VARIABLE, "spawn")
    proc = start_process(_write, tmp_path / "out", "written apart")
    proc.join(30)
    assert proc.exitcode == 0 and (tmp_path / "out").read_text() == "written apart"


def test_a_spool_reaches_a_spawned_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # collect's workers write through the spool: a spawned one has no inherited fd, and the fd
    # number it was given would name another file there (or none).
    monkeypatch.setenv(parallel.START_METHOD_VARIABLE, "spawn")
    spool = Spool(tmp_path)
    spool.put([b"main "])
    proc = start_process(_spool_put, spool, b"from a spawned worker")
    proc.join(30)
    assert proc.exitcode == 0
    assert spool.read(0, 26) == b"main from a spawned worker"
    spool.close()


def test_an_unknown_start_method_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parallel.START_METHOD_VARIABLE, "teleport")
    with pytest.raises(UsageError, match="unknown process start method 'teleport' in SEALBOX_START_METHOD"):
        list(ordered_map(_echo, range(4), 2))


def test_no_private_attribute_of_another_object_is_touched() -> None:
    # multiprocessing.Pool's internals changed under the old supervisor between Python versions:
    # only public APIs now (an object's own `self._x` aside).
    tree = ast.parse(Path(parallel.__file__).read_text())
    private = [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.endswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]
    assert private == []
