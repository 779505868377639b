"""Worker processes: stopping them (Ctrl-C, an error) never leaves a lock held for good."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

from manifest.parallel import _init, ordered_map


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


def _square(n: int) -> int:
    time.sleep(0.001 * (n % 3))  # uneven work: results arrive out of order
    return n * n
