"""Getting an order to its hosts: a file in a spool directory, or objects in the vault."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from agent.daemon.order import parse, serialize
from manifest.format.timefmt import parse_rfc3339_ns

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.vault.location import VaultLocation


def to_spool(doc: dict[str, Any], spool: Path) -> Path:
    """Write `<spool>/<order id>.json` whole or not at all (a temporary name, then a rename):
    an agent watching the spool never reads half an order."""
    order = parse(serialize(doc))
    spool.mkdir(parents=True, exist_ok=True)
    target = spool / f"{order.id}.json"
    tmp = spool / f".{order.id}.json.part"
    with open(tmp, "wb") as f:
        f.write(serialize(order.doc))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(target)
    return target


def to_vault(doc: dict[str, Any], location: VaultLocation, client: Any) -> list[str]:
    """One object per target host and group; returns their keys."""
    from manifest.vault.orders import GROUP_MARK, order_key, put_document

    order = parse(serialize(doc))
    issued = parse_rfc3339_ns(order.doc["issued"])
    targets = [*order.doc["targets"]["hosts"], *(GROUP_MARK + g for g in order.doc["targets"]["groups"])]
    keys = []
    data = serialize(order.doc)
    for target in targets:
        key = order_key(location, target, issued, order.id)
        put_document(client, location, key, data)
        keys.append(key)
    return keys
