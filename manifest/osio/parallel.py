"""Ordered parallel map over batches in worker processes: memory stays flat, order is kept, and an
interrupt, an error or a lost worker stops every worker at once.

A small supervisor over `multiprocessing.Process` and two pipes per worker, with only public APIs.
Nothing is shared between workers (no queue, no lock): a worker killed at any moment (the
out-of-memory killer, SIGKILL half way through sending a result) can leave nothing held that the
main process or another worker waits for. The main process never blocks on a worker: it writes
tasks without blocking and waits on all result pipes and process sentinels at once, so a lost
worker is noticed the moment it ends.

Workers start with `fork` where the platform has it (they inherit the loaded modules: a worker
starts in milliseconds), and with any other start method (`spawn`, `forkserver`: set
SEALBOX_START_METHOD) the same code is correct, only slower to start: the function, the
initializer's arguments and every batch are then pickled, so they must be module-level and
picklable.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import multiprocessing
import os
import pickle
import selectors
import signal
import struct
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from manifest.errors import UsageError, WorkerLost
from manifest.osio.libc import libc as c_library

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from multiprocessing.process import BaseProcess

# Per-file records are short-lived and acyclic (freed by reference counting); a cyclic collection
# every 700 allocations cost a tenth of a worker's time, so hot loops collect far less often.
FEW_COLLECTIONS = (50_000, 20, 20)

START_METHOD_VARIABLE = "SEALBOX_START_METHOD"


@contextlib.contextmanager
def few_collections() -> Iterator[None]:
    """Run a hot loop with rare cyclic garbage collections (thresholds restored afterwards)."""
    before = gc.get_threshold()
    gc.set_threshold(*FEW_COLLECTIONS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


T = TypeVar("T")
R = TypeVar("R")


def context(method: str | None = None) -> Any:  # a multiprocessing context (typeshed: one class each)
    """The multiprocessing context workers start in: `method`, else SEALBOX_START_METHOD, else
    `fork` where the platform has it, else the platform's default."""
    wanted = method or os.environ.get(START_METHOD_VARIABLE) or None
    if wanted is None and "fork" in multiprocessing.get_all_start_methods():
        wanted = "fork"
    try:
        return multiprocessing.get_context(wanted)
    except ValueError:
        known = ", ".join(multiprocessing.get_all_start_methods())
        raise UsageError(
            f"unknown process start method {wanted!r} in {START_METHOD_VARIABLE}",
            f"use one of {known}, or unset it",
        ) from None


def _leave(_signum: int, _frame: object) -> None:
    raise SystemExit(1)


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _keep_freed_memory() -> None:
    """glibc gives a batch's freed buffers (a few MB of records and views) back to the kernel,
    and the next batch faults them in again page by page: most of a small-file collection's page
    faults. A worker keeps them instead (best effort: only where glibc's mallopt exists)."""
    try:
        mallopt = c_library().mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_TRIM_THRESHOLD, 256 << 20)
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)


def give_back_freed_memory() -> None:
    """Return freed heap memory to the kernel now (glibc's malloc_trim; best effort). A long
    stream of short-lived records of mixed lifetimes (verify of a million files) otherwise leaves
    the heap fragmented and the process growing with the number of files."""
    try:
        c_library().malloc_trim(0)
    except (OSError, AttributeError):
        pass


_PR_SET_PDEATHSIG = 1


def _leave_with_parent() -> None:
    """A worker whose parent is killed outright (SIGKILL) gets SIGTERM and leaves quietly, instead
    of living on and printing a traceback when it finds no one to hand its result to. (Started by
    a fork server, its parent is that server; it then leaves at the end of its task pipe.)"""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        c_library().prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent was gone before that took effect
        raise SystemExit(1)


_STOPS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _stops_held() -> Iterator[None]:
    """Start workers with Ctrl-C and SIGTERM held back (the mask is inherited, through exec too):
    a worker stopped while it is still starting would otherwise run the parent's handlers (the
    CLI turns SIGTERM into KeyboardInterrupt) and print a traceback. `_init` lets them through
    once its own handlers are in place; here they are let through again afterwards (one that
    came meanwhile is delivered then)."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _init(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means
    # The supervisor stops workers with SIGTERM: leaving through Python runs `finally` blocks and
    # closes files (SIGKILL follows after a grace period).
    signal.signal(signal.SIGTERM, _leave)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)  # a stop sent while starting: now
    _leave_with_parent()
    gc.set_threshold(*FEW_COLLECTIONS)
    _keep_freed_memory()
    if initializer is not None:
        initializer(*initargs)


# ---------------------------------------------------------------- the wire: length, then pickle
_HEADER = struct.Struct("<Q")


def _frame(obj: object) -> bytes:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def _read_exactly(fd: int, n: int) -> bytes | None:
    """`n` bytes from a blocking pipe; None at its end (the other side is gone)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if k == 0:
            return None
        got += k
    return bytes(buf)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _failure(exc: Exception) -> tuple[bool, Any]:
    """What a worker sends for an exception raised by the function: the exception itself with
    the worker's traceback as a note (shown with -v), or, if it cannot be pickled, a stand-in
    that says what it was."""
    text = "".join(traceback.format_exception(exc))
    try:
        exc.add_note(f"raised in a worker process:\n{text}")
        pickle.loads(pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # any exception that does not survive pickling
        stand_in = RuntimeError(f"{type(exc).__name__}: {exc}")
        stand_in.add_note(f"raised in a worker process:\n{text}")
        return False, stand_in
    return False, exc


def _serve(
    tasks: Any,
    results: Any,
    fn: Callable[[Any], Any],
    initializer: Callable[..., None] | None,
    initargs: tuple[Any, ...],
    inherited: list[int],
) -> None:
    """A worker: run `fn` on each task read from `tasks` and write the outcome to `results`, in
    order, until the task pipe ends. Anything but the function's own exceptions (a stop, the
    main process gone) ends the worker quietly: the main process reports what happened."""
    for fd in inherited:  # a forked worker's copies of the other pipes' main-side ends
        with contextlib.suppress(OSError):
            os.close(fd)
    try:
        _init(initializer, initargs)
        fd_in, fd_out = tasks.fileno(), results.fileno()
        while True:
            header = _read_exactly(fd_in, _HEADER.size)
            if header is None:
                return  # no more tasks: the normal end
            body = _read_exactly(fd_in, _HEADER.unpack(header)[0])
            if body is None:
                return
            try:
                message = _frame((True, fn(pickle.loads(body))))
            except Exception as exc:  # handed to the main process, which raises it
                message = _frame(_failure(exc))
            del body
            _write_all(fd_out, message)
            del message
    except (OSError, EOFError):
        raise SystemExit(1) from None  # the main process is gone or stopped listening


# ---------------------------------------------------------------- the main side
_PREFETCH = 2  # tasks sent to a worker ahead: it never waits for the main process between two
_LOOK = 0.5  # seconds between checks when nothing arrives
_GRACE = 2.0  # seconds a stopped worker gets to leave through Python before it is killed


def _lost(proc: BaseProcess) -> WorkerLost:
    proc.join(1)
    code = proc.exitcode
    how = "ended" if code is None else f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    return WorkerLost(
        f"a worker process ended before its work was done ({how}; out of memory?)",
        "nothing it held was finished; run the command again (an interrupted collection: with --resume)",
    )


@dataclass
class _Worker:
    proc: BaseProcess
    tasks: Any  # Connection: the main side's write end of the task pipe
    results: Any  # Connection: the main side's read end of the result pipe
    keys: deque[tuple[int, ...]] = field(default_factory=deque)  # sent, in order, not yet answered
    out: bytearray = field(default_factory=bytearray)  # framed tasks not yet written
    header: bytearray = field(default_factory=bytearray)
    body: bytearray | None = None
    got: int = 0


class _Supervisor:
    """Worker processes, each fed through a pipe of its own; `poll` gathers their answers."""

    def __init__(
        self,
        fn: Callable[[Any], Any],
        workers: int,
        initializer: Callable[..., None] | None,
        initargs: tuple[Any, ...],
        method: str | None = None,
    ) -> None:
        ctx = context(method)
        forked = ctx.get_start_method() == "fork"
        self.fn = fn
        self.ended = False
        self.workers: list[_Worker] = []
        self.selector = selectors.DefaultSelector()
        if forked:  # the workers' collector leaves inherited objects alone: their pages stay shared
            gc.freeze()
        try:
            for _ in range(workers):
                task_r, task_w = ctx.Pipe(duplex=False)
                result_r, result_w = ctx.Pipe(duplex=False)
                # A forked worker closes its copies of the main side's ends (its own and the
                # other workers'): a pipe then ends for it when the main process is gone.
                inherited = []
                if forked:
                    inherited = [fd for w in self.workers for fd in (w.tasks.fileno(), w.results.fileno())]
                    inherited += [task_w.fileno(), result_r.fileno()]
                proc = ctx.Process(
                    target=_serve,
                    args=(task_r, result_w, fn, initializer, initargs, inherited),
                    daemon=True,
                )
                worker = _Worker(proc, task_w, result_r)
                self.workers.append(worker)  # stopped with the others if its start fails
                try:
                    with _stops_held():
                        proc.start()
                finally:
                    task_r.close()
                    result_w.close()
                os.set_blocking(task_w.fileno(), False)
                os.set_blocking(result_r.fileno(), False)
                self.selector.register(result_r.fileno(), selectors.EVENT_READ, worker)
                self.selector.register(proc.sentinel, selectors.EVENT_READ, worker)
        except BaseException:
            self.stop()
            raise
        finally:
            if forked:
                gc.unfreeze()

    def room(self) -> _Worker | None:
        """The worker with the fewest tasks, if it can take one more."""
        best = min(self.workers, key=lambda w: len(w.keys))
        return best if len(best.keys) < _PREFETCH else None

    def send(self, worker: _Worker, key: tuple[int, ...], batch: object) -> None:
        worker.keys.append(key)
        pending = bool(worker.out)
        worker.out += _frame(batch)
        if not pending:
            self._flush(worker)

    def _flush(self, worker: _Worker) -> None:
        fd = worker.tasks.fileno()
        try:
            n = os.write(fd, worker.out)
        except BlockingIOError:
            n = 0
        except BrokenPipeError:
            raise _lost(worker.proc) from None
        del worker.out[:n]
        # The task pipe is watched only while part of a task waits to be written (a full pipe).
        registered = fd in self.selector.get_map()
        if worker.out and not registered:
            self.selector.register(fd, selectors.EVENT_WRITE, worker)
        elif not worker.out and registered:
            self.selector.unregister(fd)

    def poll(self, timeout: float) -> list[tuple[tuple[int, ...], bool, Any]]:
        """(key, ok, result or exception) of every answer complete within `timeout`; WorkerLost
        if a worker ended."""
        answers: list[tuple[tuple[int, ...], bool, Any]] = []
        ended: _Worker | None = None
        for key, _mask in self.selector.select(timeout):
            worker: _Worker = key.data
            if key.fd == worker.proc.sentinel:
                ended = worker
            elif key.fd == worker.results.fileno():
                self._receive(worker, answers)
            else:
                self._flush(worker)
        if ended is not None:
            raise _lost(ended.proc)
        return answers

    def _receive(self, worker: _Worker, answers: list[tuple[tuple[int, ...], bool, Any]]) -> None:
        fd = worker.results.fileno()
        while True:
            if worker.body is None:
                try:
                    chunk = os.read(fd, _HEADER.size - len(worker.header))
                except BlockingIOError:
                    return
                if not chunk:
                    raise _lost(worker.proc)
                worker.header += chunk
                if len(worker.header) < _HEADER.size:
                    continue
                worker.body = bytearray(_HEADER.unpack(worker.header)[0])
                worker.got = 0
                worker.header.clear()
            view = memoryview(worker.body)
            try:
                n = os.readv(fd, [view[worker.got :]]) if worker.got < len(view) else 0
            except BlockingIOError:
                return
            if n == 0 and worker.got < len(view):
                raise _lost(worker.proc)
            worker.got += n
            if worker.got == len(view):
                ok, value = pickle.loads(worker.body)
                worker.body = None
                answers.append((worker.keys.popleft(), ok, value))

    def close(self) -> None:
        """The normal end: every task answered. Each worker leaves at the end of its task pipe."""
        if self.ended:
            return
        self.ended = True
        for worker in self.workers:
            worker.tasks.close()
        for worker in self.workers:
            worker.proc.join()
            worker.results.close()
        self.selector.close()

    def stop(self) -> None:
        """Stop every worker at once, whatever it is doing: SIGTERM, SIGKILL after a grace period.
        Nothing here waits on a worker's pipe, and no worker holds anything another one needs."""
        if self.ended:
            return
        self.ended = True
        procs = [w.proc for w in self.workers if w.proc.pid is not None]
        for proc in procs:
            if proc.exitcode is None:
                with contextlib.suppress(OSError):
                    proc.terminate()
        deadline = time.monotonic() + _GRACE
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                with contextlib.suppress(OSError):
                    proc.kill()
                proc.join()
        for worker in self.workers:
            worker.tasks.close()
            worker.results.close()
        self.selector.close()


class Workers:
    """Worker processes for `fn`, started now and fed later by `ordered_map(..., pool=...)`: work
    that can begin before the process knows all of it (verify starts hashing before it has read
    the rest of the bundle). Started from the calling thread, before any other thread of this
    process could hold a lock the forked workers would inherit; `ordered_map` may then run in
    another thread. Stopped (or closed) once, by that map, by `terminate`, or by `stop`."""

    def __init__(self, fn: Callable[[Any], Any], workers: int, method: str | None = None) -> None:
        self.count = max(1, workers)
        self.supervisor = _Supervisor(fn, self.count, None, (), method)

    def terminate(self) -> None:
        """SIGTERM to every worker, from any thread: the map feeding them ends with WorkerLost
        (or sooner), and stops what is left of the pool."""
        for worker in self.supervisor.workers:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                worker.proc.terminate()

    def stop(self) -> None:
        """Stop the workers at once (nothing left to do): from the thread that feeds them."""
        self.supervisor.stop()


def ordered_map(
    fn: Callable[[T], R],
    batches: Iterable[T],
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    window: int = 3,
    more: Callable[[R], list[T]] | None = None,
    method: str | None = None,
    pool: Workers | None = None,
) -> Iterator[R]:
    """`fn(batch)` for each batch in worker processes, yielded in input order. At most
    `window * workers` batches are in flight. `more(result)` may give batches that belong right
    after that result's (work a worker handed back); they are queued ahead of the others as soon
    as the result arrives. An interrupt or error stops the workers at once; an exception `fn`
    raises in a worker is raised here. `method` is the start method (see `context`). `pool`: run
    on workers started beforehand for this `fn` (then `workers`, `initializer` and `method` are
    theirs); the map ends them as it would its own."""
    if pool is not None:
        if pool.supervisor.fn is not fn:
            raise ValueError("the pool was started for another function")
        workers = pool.count
    elif workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        todo: deque[T] = deque()
        for batch in batches:
            todo.append(batch)
            while todo:
                result = fn(todo.popleft())
                todo.extendleft(reversed(more(result) if more is not None else []))
                yield result
        return
    running = pool.supervisor if pool is not None else _Supervisor(fn, workers, initializer, initargs, method)
    # Keys are tuples: work handed back by batch (5,) becomes (5, 1), (5, 2)..., which sort
    # after (5,) and before (6,), so the output order is the input order at every depth.
    outstanding: list[tuple[int, ...]] = []  # a heap: the next key to yield is the smallest
    waiting: deque[tuple[tuple[int, ...], T]] = deque()  # not yet sent to a worker
    done: dict[tuple[int, ...], R] = {}
    numbered = enumerate(batches)
    more_input = True
    finished = False
    failed: tuple[tuple[int, ...], BaseException] | None = None  # the first, in input order
    try:
        while True:
            while waiting and (worker := running.room()) is not None:
                key, batch = waiting.popleft()
                running.send(worker, key, batch)
            if more_input and len(outstanding) < window * workers:
                nth = next(numbered, None)
                if nth is None:
                    more_input = False
                else:
                    heapq.heappush(outstanding, (nth[0],))
                    waiting.append(((nth[0],), nth[1]))
                answers = running.poll(0)
            elif outstanding:
                answers = running.poll(_LOOK)
            else:
                break
            for key, ok, value in answers:
                if not ok:
                    if failed is None or key < failed[0]:
                        # Raised in input order, as a loop would: the earlier batches still
                        # running finish first (a failure among them wins); nothing later starts.
                        failed = (key, value)
                        more_input = False
                        waiting = deque(w for w in waiting if w[0] < key)
                        outstanding = [k for k in outstanding if k <= key]
                        heapq.heapify(outstanding)
                    continue
                if failed is not None and key > failed[0]:
                    continue
                extra = more(value) if more is not None else []
                for i, batch in reversed(list(enumerate(extra, start=1))):
                    heapq.heappush(outstanding, (*key, i))
                    waiting.appendleft(((*key, i), batch))
                done[key] = value
            while outstanding and outstanding[0] in done:
                yield done.pop(heapq.heappop(outstanding))
            if failed is not None and outstanding and outstanding[0] == failed[0]:
                raise failed[1]
        finished = True
    finally:
        if finished:
            running.close()
        else:
            running.stop()  # Ctrl-C, an error, a lost worker: do not wait for running batches


def start_process(target: Callable[..., None], *args: Any) -> BaseProcess:
    """`target(*args)` in one worker process, set up as the map's workers are (ignores Ctrl-C,
    leaves when its parent dies). The caller joins it and reads its `exitcode`."""
    proc = context().Process(target=_run_in_worker, args=(target, args), daemon=True)
    with _stops_held():
        proc.start()
    return proc


def _run_in_worker(target: Callable[..., None], args: tuple[Any, ...]) -> None:
    _init(None, ())
    target(*args)
