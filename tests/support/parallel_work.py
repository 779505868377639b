"""What the workers of tests/unit/test_parallel.py run. A worker started by spawn or forkserver
imports the module its function lives in: this one loads in a tenth of the time the test module
(pytest and all) took, for each worker of each such test."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

import psutil

from manifest.errors import SealboxError

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.osio.spool import Spool


def _square(n: int) -> int:
    time.sleep(0.001 * (n % 3))  # uneven work: results arrive out of order
    return n * n


def _first(batch: list[int]) -> list[int]:
    time.sleep(0.001 * (batch[0] % 3))
    return batch


def _reverse(data: bytes) -> bytes:
    return data[::-1]


def _die_on_13(n: int) -> int:
    if n == 13:  # as the out-of-memory killer would
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.01)
    return n


def _kill_the_idle_sibling(n: int) -> int:
    time.sleep(0.5)  # the other worker is idle by now, waiting for work
    me = os.getpid()
    for child in psutil.Process(os.getppid()).children():
        if child.pid != me and child.cmdline() == psutil.Process(me).cmdline():
            child.kill()
    time.sleep(1)
    return n


def _echo(x: int) -> int:
    return x


def _big_then_killed(n: int) -> bytes:
    import threading

    if n == 1:  # killed after a few milliseconds, while its 200 MB result is pickled or sent
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGKILL)).start()
        return os.urandom(1 << 20) * 200
    return b""


class _Unpicklable(Exception):
    def __init__(self, what: str, lock: object) -> None:
        super().__init__(what)
        self.lock = lock


def _fail(n: int) -> int:
    if n == 7:
        raise SealboxError("batch 7 cannot be read", "check the disk")
    if n == 9:
        import threading

        raise _Unpicklable("batch 9 holds a lock", threading.Lock())
    return n


def _fail_slow_first(n: int) -> int:
    """Batch 0 fails after batch 1 has failed (each worker starts with one of them)."""
    if n == 0:
        time.sleep(0.5)
    if n < 2:
        raise SealboxError(f"batch {n} cannot be read", "check the disk")
    return n


def _refuse(n: int) -> int:
    raise ValueError(f"batch {n} refused")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _slow(n: int) -> int:
    time.sleep(0.2)
    return n


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _spool_put(spool: Spool, text: bytes) -> None:
    spool.put([text])
