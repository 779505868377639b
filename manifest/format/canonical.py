"""Canonical JSON (SPEC §4): UTF-8, keys sorted, `,` and `:`, no floats."""

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
