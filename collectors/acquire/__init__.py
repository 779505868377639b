"""Acquisition: walk the sources, then read each file once to hash and copy it, in parallel.

It owns the parts of one acquisition, each a module:
- `records`: what crosses between the parts, by name (Source, Found, Task, WorkerConfig,
  BatchResult, the workers' events);
- `walk`: listing with identity pinning, what is skipped, and the overlap contract between
  sources that `collectors.expand` plans by (`nest_sources`, `Overlap`);
- `plan`: numbering in walk order and cutting into batches, and work a worker hands back;
- `worker`: per-file work in the worker processes (copy, sparse pump, case-fold placement);
- `merge`: the main side, `acquire()`, folding results into the bundle in id order.

The main process walks (cheap, ordered, assigns item ids) and writes items.jsonl in id order; a
pool of worker processes does the per-file work, because per-file Python work holds the GIL.
Memory stays flat: a bounded window of batches is in flight and results stream to disk.
"""

from __future__ import annotations

from collectors.acquire.merge import acquire
from collectors.acquire.plan import batches, handed_back
from collectors.acquire.records import (
    AcquireStats,
    BatchResult,
    DirId,
    Found,
    ProgressSink,
    Source,
    Task,
    WorkerConfig,
)
from collectors.acquire.walk import Skip, nest_sources, open_listed_dir, walk
from collectors.acquire.worker import Acquirer

__all__ = [
    "AcquireStats",
    "Acquirer",
    "BatchResult",
    "DirId",
    "Found",
    "ProgressSink",
    "Skip",
    "Source",
    "Task",
    "WorkerConfig",
    "acquire",
    "batches",
    "handed_back",
    "nest_sources",
    "open_listed_dir",
    "walk",
]
