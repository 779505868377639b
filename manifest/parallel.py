"""Ordered parallel map over batches with a bounded window: memory stays flat, order is kept."""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

T = TypeVar("T")
R = TypeVar("R")


def _init(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means
    if initializer is not None:
        initializer(*initargs)


def ordered_map(
    fn: Callable[[T], R],
    batches: Iterable[T],
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    window: int = 3,
) -> Iterator[R]:
    """`fn(batch)` for each batch in worker processes, yielded in input order. At most
    `window * workers` batches are in flight. An interrupt or error stops the workers at once."""
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        for batch in batches:
            yield fn(batch)
        return
    ctx = multiprocessing.get_context("fork")  # workers inherit loaded modules: fast start
    pool = ctx.Pool(workers, initializer=_init, initargs=(initializer, initargs))
    pending: deque[Any] = deque()
    finished = False
    try:
        for batch in batches:
            pending.append(pool.apply_async(fn, (batch,)))
            while len(pending) > window * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
        finished = True
    finally:
        if finished:
            pool.close()
        else:
            pool.terminate()  # Ctrl-C or a failure: do not wait for running batches
        pool.join()
