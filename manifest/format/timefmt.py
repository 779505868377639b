"""Times as integer nanoseconds and RFC 3339 UTC strings (never floats)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import overload

_NS = 1_000_000_000


_seconds: dict[int, str] = {}  # whole second -> its text up to the fraction's dot


@overload
def rfc3339_ns(ns: int) -> str: ...
@overload
def rfc3339_ns(ns: None) -> None: ...
@overload
def rfc3339_ns(ns: int | None) -> str | None: ...
def rfc3339_ns(ns: int | None) -> str | None:
    """`1700000000123456789` -> `2023-11-14T22:13:20.123456789Z`; None stays None."""
    if ns is None:
        return None
    stamp = _seconds.get(ns // _NS)
    if stamp is None:  # hot path: a run formats millions of times that share few seconds
        if len(_seconds) > 4096:
            _seconds.clear()
        t = time.gmtime(ns // _NS)
        stamp = _seconds[ns // _NS] = (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}."
        )
    # The fraction's nine digits, zeros in front: those of 1xxxxxxxxx after its leading 1 (a
    # quarter faster than a format specification, six times a file).
    return stamp + str(ns % _NS + _NS)[1:] + "Z"


def now_ns() -> int:
    """Wall clock now, in integer nanoseconds since the epoch."""
    return time.time_ns()


def now_rfc3339() -> str:
    """Wall clock now as RFC 3339 UTC with nanoseconds."""
    return rfc3339_ns(time.time_ns()) or ""


def compact_utc(ns: int) -> str:
    """The `YYYYMMDDTHHMMSSZ` form used in bundle names."""
    return datetime.fromtimestamp(ns // _NS, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_rfc3339_ns(text: str) -> int:
    """Inverse of `rfc3339_ns` (also accepts offsets and fewer fraction digits)."""
    main, _, rest = text.partition(".")
    frac = ""
    tz = "Z"
    if rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        frac, tz = rest[:digits], rest[digits:] or "Z"
    elif text.endswith("Z"):
        main, tz = text[:-1], "Z"
    elif len(text) > 19:
        main, tz = text[:19], text[19:]
    if tz == "Z":
        tz = "+00:00"
    dt = datetime.fromisoformat(main + tz)
    return int(dt.timestamp()) * _NS + int((frac + "000000000")[:9])
