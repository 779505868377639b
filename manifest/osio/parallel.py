"""Ordered parallel map over batches with a bounded window: memory stays flat, order is kept."""

from __future__ import annotations

import contextlib
import gc
import heapq
import multiprocessing
import multiprocessing.pool as mp_pool
import os
import queue
import signal
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from manifest.errors import WorkerLost
from manifest.osio.libc import libc as c_library

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

# Per-file records are short-lived and acyclic (freed by reference counting); a cyclic collection
# every 700 allocations cost a tenth of a worker's time, so hot loops collect far less often.
FEW_COLLECTIONS = (50_000, 20, 20)


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
    of living on and printing a traceback when it finds no one to hand its result to."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        c_library().prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent was gone before that took effect
        raise SystemExit(1)


def _init(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means
    # `_stop` stops workers with SIGTERM. Leaving through Python releases a lock this worker
    # holds (a queue's, while it takes a task or puts a result) instead of dying with it held.
    signal.signal(signal.SIGTERM, _leave)
    _leave_with_parent()
    gc.set_threshold(*FEW_COLLECTIONS)
    _keep_freed_memory()
    if initializer is not None:
        initializer(*initargs)


_LOOK = 0.5  # seconds between checks that every worker is still there


def _check_workers(started: list[Any]) -> None:
    """Raise WorkerLost if one of the pool's processes has ended. A pool worker only ends when the
    pool is closed, so one that ended was killed (the out-of-memory killer, a signal): the batch
    it held will never come back, and waiting for it would wait for good."""
    for proc in started:
        code = proc.exitcode
        if code is not None:
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            raise WorkerLost(
                f"a worker process ended before its work was done ({how}; out of memory?)",
                "nothing it held was finished; run the command again"
                " (an interrupted collection: with --resume)",
            )


_GRACE = 2.0  # seconds a stopped worker gets to leave through Python before it is killed


def _discard(reader: Any) -> None:
    """Throw away whatever is waiting in a pipe, without blocking."""
    fd = reader.fileno()
    os.set_blocking(fd, False)
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 1 << 16):
            pass


@contextlib.contextmanager
def _quiet(thread: threading.Thread) -> Iterator[None]:
    """An exception that ends `thread` meanwhile prints nothing (others still do)."""
    hook = threading.excepthook

    def quiet(args: Any) -> None:
        if args.thread is not thread:
            hook(args)

    threading.excepthook = quiet
    try:
        yield
    finally:
        threading.excepthook = hook


def _stop(pool: Any) -> None:
    """Stop the pool at once, whatever its workers were doing. Pool.terminate() is not used: it
    reads the task queue under a lock that a worker killed outright (the out-of-memory killer)
    never gives back, and, beside live workers, it can take half of a message and wait for the
    rest for good. Here no step waits on a worker: none is started again, each is stopped
    (SIGTERM, SIGKILL after a grace period), and the pool's threads are then let go one by one."""
    collector = pool._result_handler
    # A worker stopped while sending a result can leave half of it in the result pipe; the result
    # thread then fails on what it reads. Expected here: it must not print a traceback.
    with _quiet(collector):
        pool._state = mp_pool.TERMINATE
        # The pool's own threads put to the result queue with a lock of their own from now on: a
        # worker stopped (or killed) while putting a result may leave the shared one taken.
        if getattr(pool._outqueue, "_wlock", None) is not None:
            pool._outqueue._wlock = multiprocessing.get_context("fork").Lock()
        maintainer = pool._worker_handler  # it would start new workers for the ones stopped below
        maintainer._state = mp_pool.TERMINATE
        pool._change_notifier.put(None)
        maintainer.join()
        workers = list(pool._pool)
        for proc in workers:
            if proc.exitcode is None:
                proc.terminate()
        deadline = time.monotonic() + _GRACE
        for proc in workers:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                proc.kill()
                proc.join()
        feeder = pool._task_handler
        feeder._state = mp_pool.TERMINATE
        while feeder.is_alive():  # it may be blocked putting a task into a full pipe
            _discard(pool._inqueue._reader)
            feeder.join(0.01)
        # The result thread leaves on the feeder's last message or, if a stopped worker left half
        # a message, at the end of the pipe once no writer is left.
        collector._state = mp_pool.TERMINATE
        pool._outqueue._writer.close()
        collector.join()
    pool._terminate.cancel()  # its finalizer would run terminate() at exit


def _wait(job: Any, started: list[Any]) -> Any:
    """`job.get()`, checking meanwhile that no worker was lost."""
    while not job.ready():
        job.wait(_LOOK)
        _check_workers(started)
    return job.get()


def ordered_map(
    fn: Callable[[T], R],
    batches: Iterable[T],
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    window: int = 3,
    more: Callable[[R], list[T]] | None = None,
) -> Iterator[R]:
    """`fn(batch)` for each batch in worker processes, yielded in input order. At most
    `window * workers` batches are in flight. `more(result)` may give batches that belong right
    after that result's (work a worker handed back); they are queued as soon as the result
    arrives, whatever its place in the order. An interrupt or error stops the workers at once."""
    if workers <= 1:
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
    ctx = multiprocessing.get_context("fork")  # workers inherit loaded modules: fast start
    gc.freeze()  # the workers' collector leaves inherited objects alone: their pages stay shared
    pool = ctx.Pool(workers, initializer=_init, initargs=(initializer, initargs))
    gc.unfreeze()
    # The pool's own processes (it starts a new one for any that ends; these are the first ones).
    started = list(pool._pool)  # type: ignore[attr-defined]
    # Keys are tuples: work handed back by batch (5,) becomes (5, 1), (5, 2)..., which sort
    # after (5,) and before (6,), so the output order is the input order at every depth.
    arrived: queue.SimpleQueue[tuple[tuple[int, ...], Any, BaseException | None]] = queue.SimpleQueue()
    outstanding: list[tuple[int, ...]] = []  # a heap: the next key to yield is the smallest
    done: dict[tuple[int, ...], R] = {}

    def submit(key: tuple[int, ...], batch: T) -> None:
        heapq.heappush(outstanding, key)
        pool.apply_async(
            fn,
            (batch,),
            callback=lambda result: arrived.put((key, result, None)),
            error_callback=lambda exc: arrived.put((key, None, exc)),
        )

    numbered = enumerate(batches)
    finished = False
    try:
        while True:
            while len(outstanding) < window * workers and (nth := next(numbered, None)) is not None:
                submit((nth[0],), nth[1])
            if not outstanding:
                break
            try:
                key, result, exc = arrived.get(timeout=_LOOK)
            except queue.Empty:
                _check_workers(started)
                continue
            if exc is not None:
                raise exc
            for i, extra in enumerate(more(result) if more is not None else [], start=1):
                submit((*key, i), extra)
            done[key] = result
            while outstanding and outstanding[0] in done:
                yield done.pop(heapq.heappop(outstanding))
        finished = True
    finally:
        if finished:
            pool.close()
        else:
            _stop(pool)  # Ctrl-C or a failure: do not wait for running batches
        pool.join()


def start_process(target: Callable[..., None], *args: Any) -> Any:
    """`target(*args)` in one forked worker process, set up as the pools' workers are (ignores
    Ctrl-C, leaves when its parent dies). The caller joins it and reads its `exitcode`."""
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_run_in_worker, args=(target, args), daemon=True)
    proc.start()
    return proc


def _run_in_worker(target: Callable[..., None], args: tuple[Any, ...]) -> None:
    _init(None, ())
    target(*args)


class BackgroundMap(Generic[T, R]):
    """`fn(batch)` for every batch, all submitted to worker processes at once so the caller can do
    its own work meanwhile; `results()` yields in input order. Leaving the `with` block early
    (an error, Ctrl-C) stops the workers at once."""

    def __init__(
        self,
        fn: Callable[[T], R],
        batches: list[T],
        workers: int,
        first: tuple[Callable[..., Any], tuple[Any, ...]] | None = None,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        self.fn = fn
        self.batches = batches
        self.first = first
        self.pool: Any = None
        self.pending: list[Any] = []
        self.first_job: Any = None
        self.started: list[Any] = []
        if workers <= 1 or len(batches) + (first is not None) <= 1:
            if initializer is not None:
                initializer(*initargs)
            return
        # Forked workers get `initargs` by inheritance, not pickling. Frozen objects are left
        # alone by the collector, so the workers' gc does not copy the parent's pages.
        gc.freeze()
        self.pool = multiprocessing.get_context("fork").Pool(
            workers, initializer=_init, initargs=(initializer, initargs)
        )
        gc.unfreeze()
        self.started = list(self.pool._pool)
        if first is not None:  # a different, longer task, queued ahead of the batches
            self.first_job = self.pool.apply_async(first[0], first[1])
        self.pending = [self.pool.apply_async(fn, (batch,)) for batch in batches]

    def first_result(self) -> Any:
        """The result of `first` (run here when there is no pool)."""
        if self.first is None:
            return None
        if self.first_job is None:
            return self.first[0](*self.first[1])
        return _wait(self.first_job, self.started)

    def results(self) -> Iterator[R]:
        if self.pool is None:
            for batch in self.batches:
                yield self.fn(batch)
            return
        for job in self.pending:
            yield _wait(job, self.started)

    def __enter__(self) -> BackgroundMap[T, R]:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self.pool is None:
            return
        if exc_type is None:
            self.pool.close()
        else:
            _stop(self.pool)
        self.pool.join()
