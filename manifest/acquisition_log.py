"""The acquisition log, metadata/acquisition-log.jsonl: structlog, one JSON object a line."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import structlog


def _structlog() -> Any:
    """The structlog package. It imports rich, and through it pygments, for pretty console
    tracebacks whenever rich is installed: a fifth of a collection's start-up time, for output this
    log never makes. Unless rich is loaded already, structlog is imported as if rich were absent
    (rich itself stays importable: the progress bar loads it when it draws)."""
    if "structlog" in sys.modules or "rich" in sys.modules:
        import structlog

        return structlog
    sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` raises ImportError
    try:
        import structlog
    finally:
        del sys.modules["rich"]
    return structlog


def open_log(stream: TextIO, **bound: Any) -> structlog.typing.FilteringBoundLogger:
    """A logger writing each event as sorted JSON with its level and a UTC ISO time, to `stream`."""
    sl = _structlog()
    logger: structlog.typing.FilteringBoundLogger = sl.wrap_logger(
        sl.WriteLogger(stream),
        processors=[
            sl.processors.add_log_level,
            sl.processors.TimeStamper(fmt="iso", utc=True),
            sl.processors.JSONRenderer(sort_keys=True),
        ],
    ).bind(**bound)
    return logger
