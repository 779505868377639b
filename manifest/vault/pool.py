"""A thread pool map that stops at the first error or interrupt instead of finishing the queue."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """Results in the order of `items`. On an error, Ctrl-C or SIGTERM the queued calls are
    dropped (the running ones finish: a request cut midway would only be sent again)."""
    pool = ThreadPoolExecutor(workers)
    try:
        yield from pool.map(fn, items)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
