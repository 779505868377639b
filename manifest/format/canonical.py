"""Canonical JSON (SPEC §4): UTF-8, keys sorted, `,` and `:`, no floats; and the one strict reader
of signed JSON (custody lines, receipts, orders)."""

from __future__ import annotations

import json
from typing import Any

from manifest.errors import BundleError


def _reject_floats(value: Any) -> None:
    if isinstance(value, float):
        raise BundleError(f"a float ({value!r}) cannot be serialized canonically; use an integer")
    if isinstance(value, dict):
        for v in value.values():
            _reject_floats(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _reject_floats(v)


def canonical_bytes(obj: Any) -> bytes:
    """The one byte serialization that custody signatures and hashes are made over."""
    _reject_floats(obj)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


MAX_DEPTH = 16  # containers deep; signed documents never need more, and deep JSON costs the stack


class NotCanonical(ValueError):
    """Signed JSON that canonical JSON cannot hold: its message says what."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise NotCanonical("a key appears twice in one object")
    return out


def _no_float(text: str) -> Any:
    raise NotCanonical(f"a float ({text}) cannot be canonical")


def _no_constant(name: str) -> Any:
    raise NotCanonical(f"{name} is not JSON")


def depth_ok(value: Any) -> bool:
    """Whether `value` nests at most MAX_DEPTH containers deep (no recursion: a stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                return False
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return True


def strict_loads(text: str) -> Any:
    """Parse signed JSON: no repeated key, no float, no NaN/Infinity, at most MAX_DEPTH deep.

    Raises ValueError (json's own errors, NotCanonical) or RecursionError; callers turn those
    into their own finding or refusal."""
    value = json.loads(
        text, object_pairs_hook=_no_duplicates, parse_float=_no_float, parse_constant=_no_constant
    )
    if not depth_ok(value):
        raise NotCanonical(f"nested deeper than {MAX_DEPTH} levels")
    return value
