"""Batches: what the walk finds, numbered in walk order and cut into the units workers take."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collectors.acquire.records import Task

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from collectors.acquire.records import BatchResult, Found, ProgressSink

BATCH_FILES = 512


def batches(
    found: Iterable[Found], next_id: Callable[[], int], progress: ProgressSink
) -> Iterator[list[Task]]:
    """Tasks in batches of BATCH_FILES, ids in walk order. Sizes are not known here: a worker
    hands back what should not share its batch (see `Acquirer.run`, `handed_back`)."""
    batch: list[Task] = []
    size = BATCH_FILES
    for f in found:
        batch.append(Task(next_id(), f.path, f.original, f.source, f.listed_from, f.apart, f.is_file))
        if len(batch) >= size:
            progress.add_total(len(batch), 0)
            yield batch
            batch = []
    if batch:
        progress.add_total(len(batch), 0)
        yield batch


def handed_back(result: BatchResult, workers: int) -> list[list[Task]]:
    """The batches a worker's leftover becomes: a big file alone, the rest cut so every worker
    gets a share (each share hands back again if it too holds more than a batch's worth)."""
    rest = result.leftover
    if not rest:
        return []
    head = [rest[:1]] if result.alone else []
    rest = rest[1:] if result.alone else rest
    size = max(1, -(-len(rest) // workers))
    return head + [rest[i : i + size] for i in range(0, len(rest), size)]
