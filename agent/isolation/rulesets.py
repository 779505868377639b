"""The host's whole ruleset, before isolation and after restore, and an honest comparison.

Every view the kernel offers is read: `nft list ruleset` (which includes the tables iptables-nft
manages), the legacy x_tables (`iptables-legacy-save`, `ip6tables-legacy-save`, invisible to
nft), and, only when `nft` is missing, `iptables-save` / `ip6tables-save` of the nf_tables
variant. After a restore the same views are read again and compared; only packet and byte
counters are ignored.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from agent.isolation._run import have, run
from manifest.format.timefmt import now_ns, rfc3339_ns

NFT = "nft list ruleset"
LEGACY = ("iptables-legacy-save", "ip6tables-legacy-save")
NFT_VARIANT = ("iptables-nft-save", "ip6tables-nft-save")
DEFAULT_SAVE = ("iptables-save", "ip6tables-save")

_NFT_COUNTERS = re.compile(r"\bpackets \d+ bytes \d+\b")
_SAVE_COUNTERS = re.compile(r"\[\d+:\d+\]")


def _read(argv: list[str]) -> str | None:
    proc = run(argv, check=False)
    return proc.stdout if proc.returncode == 0 else None


def take() -> dict[str, Any]:
    """Every view of the ruleset there is now (a view whose tool is missing is left out)."""
    views: dict[str, str | None] = {}
    nft_json: Any = None
    if have("nft"):
        views[NFT] = _read(["nft", "list", "ruleset"])
        text = _read(["nft", "-j", "list", "ruleset"])
        nft_json = json.loads(text) if text else None
    else:
        # Without nft, the nf_tables variant of iptables is the only view of its tables.
        for variant, default in zip(NFT_VARIANT, DEFAULT_SAVE, strict=True):
            tool = variant if have(variant) else default
            if have(tool):
                views[tool] = _read([tool])
    for tool in LEGACY:
        if have(tool):
            views[tool] = _read([tool])
    return {"taken_at": rfc3339_ns(now_ns()), "nft_json": nft_json, "views": views}


def normalize(view: str, text: str) -> str:
    """`text` with counters zeroed (and, for iptables-save, its dated comment lines dropped)."""
    if view == NFT:
        return _NFT_COUNTERS.sub("packets 0 bytes 0", text)
    lines = [_SAVE_COUNTERS.sub("[0:0]", ln.rstrip()) for ln in text.splitlines()]
    return "\n".join(ln for ln in lines if ln and not ln.startswith("#")) + "\n"


def _save_tables(text: str) -> dict[str, str]:
    tables: dict[str, str] = {}
    current: list[str] = []
    for line in text.splitlines():
        current.append(line)
        if line == "COMMIT":
            tables[current[0].lstrip("*")] = "\n".join(current)
            current = []
    return tables


def _trivial(table_text: str) -> bool:
    """Only built-in chains, policy ACCEPT, no rule: a table that filters nothing."""
    body = table_text.splitlines()[1:-1]
    return all(ln.startswith(":") and ln.split()[1] == "ACCEPT" for ln in body)


@dataclass
class Comparison:
    """What a restore left, against the snapshot: differences (drift) and harmless notes."""

    drift: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.drift and not self.notes


def compare(before: dict[str, Any], after: dict[str, Any]) -> Comparison:
    """Each view in `before` against the same view in `after`, counters aside."""
    result = Comparison()
    now_views: dict[str, str | None] = after.get("views", {})
    for view, then in (before.get("views") or {}).items():
        if then is None or now_views.get(view) is None:
            continue
        b, a = normalize(view, then), normalize(view, now_views[view] or "")
        if view in LEGACY:
            # The kernel keeps a legacy table once it has been used and cannot delete it.
            had, has = _save_tables(b), _save_tables(a)
            for name in sorted(set(has) - set(had)):
                if _trivial(has[name]):
                    result.notes.append(
                        f"{view}: an empty `{name}` table now exists (the kernel keeps a legacy"
                        " table once used; it holds no rule and filters nothing)"
                    )
                    del has[name]
            a = "\n".join(has.values())
            b = "\n".join(had.values())
        if a != b:
            result.drift.append({"kind": "drift", "source": view, "diff": diff(view, b, a)})
    return result


def diff(label: str, before: str, after: str) -> list[str]:
    return list(
        difflib.unified_diff(
            before.splitlines(),
            after.splitlines(),
            f"{label} before isolation",
            f"{label} now",
            lineterm="",
            n=1,
        )
    )
