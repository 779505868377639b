"""Worker processes: stopping them (Ctrl-C, an error) never leaves a lock held for good."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from manifest.errors import WorkerLost
from manifest.osio.parallel import BackgroundMap, _init, ordered_map
from tests.support.env import REPO


def _hold(lock, ready) -> None:  # a worker in the middle of putting a result: the queue lock held
    _init(None, ())
    with lock:
        ready.set()
        time.sleep(60)


def test_a_worker_stopped_while_holding_a_lock_releases_it() -> None:
    # Pool.terminate() sends SIGTERM; a worker that died holding the result queue's lock would
    # leave the parent's terminate() waiting for it for good (as a Ctrl-C once did in a test run).
    ctx = multiprocessing.get_context("fork")
    lock, ready = ctx.Lock(), ctx.Event()
    worker = ctx.Process(target=_hold, args=(lock, ready))
    worker.start()
    assert ready.wait(10)
    os.kill(worker.pid, signal.SIGTERM)
    worker.join(10)
    assert worker.exitcode == 1
    assert lock.acquire(timeout=5), "the stopped worker kept the lock"
    lock.release()


def test_ordered_map_keeps_input_order_across_workers() -> None:
    assert list(ordered_map(_square, range(50), 3, window=2)) == [n * n for n in range(50)]


def test_ordered_map_puts_handed_back_batches_right_after_their_own() -> None:
    # A batch may hand work back (collectors.acquire does, for big files); the pieces go right
    # after it in the output, at any depth, however the results arrive.
    def more(result: list[int]) -> list[list[int]]:
        return [result[1:2], result[2:]] if len(result) > 1 else []

    batches = [[n, n + 100, n + 200] for n in range(20)]
    for workers in (1, 3):
        out = list(ordered_map(_first, batches, workers, window=2, more=more))
        assert out == [x for n in range(20) for x in ([n, n + 100, n + 200], [n + 100], [n + 200])]


def _first(batch: list[int]) -> list[int]:
    time.sleep(0.001 * (batch[0] % 3))
    return batch


def _square(n: int) -> int:
    time.sleep(0.001 * (n % 3))  # uneven work: results arrive out of order
    return n * n


def _die_on_13(n: int) -> int:
    if n == 13:  # as the out-of-memory killer would
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.01)
    return n


def test_a_killed_worker_is_an_error_not_a_wait_for_good() -> None:
    # The pool replaces a killed worker but its batch never comes back: without a check the
    # caller waited for it for ever.
    start = time.monotonic()
    with pytest.raises(WorkerLost, match="killed by signal 9"):
        list(ordered_map(_die_on_13, range(40), 2))
    with (
        pytest.raises(WorkerLost, match="killed by signal 9"),
        BackgroundMap(_die_on_13, list(range(40)), 2) as work,
    ):
        list(work.results())
    assert time.monotonic() - start < 30


def _kill_the_idle_sibling(n: int) -> int:
    time.sleep(0.5)  # the other worker is idle by now, waiting for work: it holds the task queue's lock
    me = os.getpid()
    for child in psutil.Process(os.getppid()).children():
        if child.pid != me and child.cmdline() == psutil.Process(me).cmdline():
            child.kill()
    time.sleep(1)
    return n


def test_a_worker_killed_while_waiting_for_work_does_not_hang_the_stop() -> None:
    # It dies holding the task queue's lock, which Pool.terminate() takes: stopping the pool
    # must not wait for it. In a child process with a time limit, so a regression fails, not hangs.
    code = (
        "import sys; sys.path.insert(0, '.')\n"
        "from manifest.errors import WorkerLost\n"
        "from manifest.osio.parallel import ordered_map\n"
        "from tests.unit.test_parallel import _kill_the_idle_sibling\n"
        "try:\n"
        "    list(ordered_map(_kill_the_idle_sibling, [1], 2))\n"
        "except WorkerLost as exc:\n"
        "    print(exc.message)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "a worker process ended before its work was done (killed by signal 9" in proc.stdout, proc.stderr


def _echo(x: int) -> int:
    return x


def test_stopping_early_while_workers_wait_for_work_never_hangs() -> None:
    # An interrupt after the first result stops the pool while live workers wait for the next task:
    # terminate() must not compete with them for the task queue (it once waited for good, about
    # one stop in ten). A hundred stops in a child process with a time limit.
    code = (
        "from manifest.osio.parallel import ordered_map\n"
        "import sys; sys.path.insert(0, 'tests')\n"
        "from tests.unit.test_parallel import _echo\n"
        "for _ in range(100):\n"
        "    results = ordered_map(_echo, range(10_000), 2, window=8)\n"
        "    next(results)\n"
        "    results.close()\n"
        "print('stopped 100 times')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "stopped 100 times", proc.stderr


def _stop_with_this_in_the_result_pipe(raw: bytes) -> subprocess.CompletedProcess[str]:
    """A pool stopped with `raw` in its result pipe, as a worker killed while sending a result
    leaves it: in a child process with a time limit, so a regression fails, not hangs."""
    code = (
        "import multiprocessing, os\n"
        "from manifest.osio.parallel import _init, _stop\n"
        "pool = multiprocessing.get_context('fork').Pool(2, initializer=_init, initargs=(None, ()))\n"
        f"os.write(pool._outqueue._writer.fileno(), {raw!r})\n"
        "_stop(pool)\n"
        "pool.join()\n"
        "print('stopped')\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_half_a_result_left_by_a_killed_worker_neither_hangs_the_stop_nor_prints() -> None:
    half = (1000).to_bytes(4, "big") + b"x" * 10  # a 1000-byte message cut after 10 bytes
    proc = _stop_with_this_in_the_result_pipe(half)
    assert proc.stdout.strip() == "stopped" and proc.stderr == "", proc.stderr
    # Half a message that the stop's own sentinel completes: garbage the result thread cannot
    # read, which must not print a traceback either.
    garbage = (16).to_bytes(4, "big") + b"not a pickle"
    proc = _stop_with_this_in_the_result_pipe(garbage)
    assert proc.stdout.strip() == "stopped" and proc.stderr == "", proc.stderr
