"""Times as RFC 3339 UTC text with nanoseconds: exact, before 1970 too, and back again."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from manifest.format.timefmt import parse_rfc3339_ns, rfc3339_ns


def _by_datetime(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


def test_exact_text_for_known_instants() -> None:
    assert rfc3339_ns(None) is None
    assert rfc3339_ns(0) == "1970-01-01T00:00:00.000000000Z"
    assert rfc3339_ns(1) == "1970-01-01T00:00:00.000000001Z"
    assert rfc3339_ns(-5) == "1969-12-31T23:59:59.999999995Z"
    assert rfc3339_ns(-1_000_000_000) == "1969-12-31T23:59:59.000000000Z"
    assert rfc3339_ns(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert rfc3339_ns(1_700_000_000_000_000_010) == "2023-11-14T22:13:20.000000010Z"


def test_many_instants_agree_with_datetime_and_read_back() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        ns = rng.randrange(-2_000_000_000_000_000_000, 4_000_000_000_000_000_000)
        text = rfc3339_ns(ns)
        assert text == _by_datetime(ns)
        assert parse_rfc3339_ns(text) == ns
