"""Orders (FORMAT.md §11): signed JSON telling hosts what to do; made, co-signed, parsed, checked.

An order's signatures are Ed25519 over the canonical bytes (FORMAT.md §4) of the order without its
`signatures` field: the same serialization as custody events, so one reader checks both. The
check returns the order or raises `OrderRefused` whose `code` says why, for the signed refusal.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from manifest.bundle import CASE_ID
from manifest.errors import SealboxError, UsageError
from manifest.format.canonical import canonical_bytes, strict_loads
from manifest.format.timefmt import now_ns, parse_rfc3339_ns, rfc3339_ns
from manifest.signing.keys import fingerprint, public_from_raw, verify_signature

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from manifest.signing.keys import Identity, Signer

FORMAT = "sealbox-order/1"
ACTIONS = ("isolate", "restore", "respond", "collect", "push", "status")
MAX_BYTES = 64 * 1024  # an order is a few hundred bytes; anything near this is not an order
SECOND = 1_000_000_000
DEFAULT_VALIDITY = 3600 * SECOND
MAX_VALIDITY = 7 * 86400 * SECOND
# A host's clock may run a little behind the issuer's: not-before is honoured this much early.
CLOCK_SKEW = 120 * SECOND
MAX_SIGNATURES = 8

# Refusal codes (stable: status documents and `fleet status` carry them).
OVERSIZED = "oversized"
MALFORMED = "malformed"
UNKNOWN_ACTION = "unknown-action"
BAD_SIGNATURE = "bad-signature"
UNTRUSTED_ISSUER = "untrusted-issuer"
INSUFFICIENT_SIGNATURES = "insufficient-signatures"
EXPIRED = "expired"
NOT_YET_VALID = "not-yet-valid"
OTHER_HOST = "other-host"
REPLAYED = "replayed"
REFUSALS = (
    OVERSIZED,
    MALFORMED,
    UNKNOWN_ACTION,
    BAD_SIGNATURE,
    UNTRUSTED_ISSUER,
    INSUFFICIENT_SIGNATURES,
    EXPIRED,
    NOT_YET_VALID,
    OTHER_HOST,
    REPLAYED,
)

# action -> argument name -> type (bool is checked apart from int: JSON true is not a number).
ARGUMENTS: dict[str, dict[str, type]] = {
    "isolate": {"allow": list, "allow_dns": bool, "expire": str, "check": str},
    "restore": {},
    "respond": {"profile": str, "root": str, "push": bool},
    "collect": {"profile": str, "root": str, "push": bool},
    "push": {"bundle": str},
    "status": {},
}
_FIELDS: dict[str, type] = {
    "format": str,
    "id": str,
    "issued": str,
    "not_before": str,
    "not_after": str,
    "issuer": dict,
    "targets": dict,
    "case": str,
    "action": str,
    "arguments": dict,
    "reason": str,
    "signatures": list,
}
_IDENTITY = ("name", "role", "organization", "key")
_SIGNATURE = ("key", "public_key", "sig", "name", "role", "organization")


class OrderRefused(SealboxError):
    """An order this host will not carry out; `code` is one of REFUSALS."""

    def __init__(self, code: str, message: str, order_id: str | None = None) -> None:
        super().__init__(f"order refused ({code}): {message}")
        self.code = code
        self.reason = message
        self.order_id = order_id


@dataclass(frozen=True)
class Order:
    """A parsed order whose signatures were checked (or only parsed, see `parse`)."""

    doc: dict[str, Any]
    signers: list[str] = field(default_factory=list)  # trusted fingerprints that signed it

    @property
    def id(self) -> str:
        return str(self.doc["id"])

    @property
    def action(self) -> str:
        return str(self.doc["action"])

    @property
    def case(self) -> str:
        return str(self.doc["case"])

    @property
    def arguments(self) -> dict[str, Any]:
        return dict(self.doc["arguments"])

    @property
    def not_after_ns(self) -> int:
        return parse_rfc3339_ns(self.doc["not_after"])

    @property
    def reason(self) -> str:
        return str(self.doc["reason"])


@dataclass(frozen=True)
class OrderTrust:
    """Who may command this host (kept apart from whose evidence is trusted) and how many of them
    must sign each action (the two-person rule)."""

    keys: Mapping[str, Identity]
    require: Mapping[str, int] = field(default_factory=dict)

    def required(self, action: str) -> int:
        return max(1, int(self.require.get(action, 1)))


def body_bytes(doc: Mapping[str, Any]) -> bytes:
    """What every signature of an order is made over."""
    return canonical_bytes({k: v for k, v in doc.items() if k != "signatures"})


def _signature(doc: Mapping[str, Any], signer: Signer) -> dict[str, str]:
    return {
        **{k: v for k, v in signer.identity.as_actor().items() if k != "key"},
        "key": signer.fingerprint,
        "public_key": signer.public_b64(),
        "sig": base64.b64encode(signer.sign(body_bytes(doc))).decode(),
    }


def new_order(
    *,
    signer: Signer,
    action: str,
    case: str,
    hosts: Collection[str] = (),
    groups: Collection[str] = (),
    arguments: Mapping[str, Any] | None = None,
    reason: str = "",
    not_before_ns: int | None = None,
    valid_ns: int = DEFAULT_VALIDITY,
    issued_ns: int | None = None,
) -> dict[str, Any]:
    """A new order, signed by its issuer; checked as an agent would check its form."""
    issued = now_ns() if issued_ns is None else issued_ns
    start = issued if not_before_ns is None else not_before_ns
    if not 0 < valid_ns <= MAX_VALIDITY:
        raise UsageError("an order is valid for at most 7 days", "give a shorter --valid (default 1h)")
    doc: dict[str, Any] = {
        "format": FORMAT,
        "id": str(uuid.uuid4()),
        "issued": rfc3339_ns(issued),
        "not_before": rfc3339_ns(start),
        "not_after": rfc3339_ns(start + valid_ns),
        "issuer": signer.identity.as_actor(),
        "targets": {"hosts": sorted(set(hosts)), "groups": sorted(set(groups))},
        "case": case,
        "action": action,
        "arguments": dict(arguments or {}),
        "reason": reason,
    }
    try:
        _check_form(doc)
    except OrderRefused as exc:
        raise UsageError(exc.reason) from exc
    doc["signatures"] = [_signature(doc, signer)]
    return doc


def cosign(doc: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """Add a second (third…) signature; the signatures already there must hold."""
    order = parse(serialize(doc))
    verify_signatures(order.doc)
    if any(s["key"] == signer.fingerprint for s in order.doc["signatures"]):
        raise UsageError(f"key {signer.fingerprint} has already signed order {order.id}")
    if len(order.doc["signatures"]) >= MAX_SIGNATURES:
        raise UsageError(f"order {order.id} already has {MAX_SIGNATURES} signatures")
    out = dict(order.doc)
    out["signatures"] = [*order.doc["signatures"], _signature(order.doc, signer)]
    return out


def serialize(doc: Mapping[str, Any]) -> bytes:
    """The order as a file: canonical JSON and a newline."""
    return canonical_bytes(dict(doc)) + b"\n"


def peek_id(data: bytes) -> str | None:
    """The order id of a document that may be refused, to name it in the refusal (or None)."""
    try:
        doc = json.loads(data[:MAX_BYTES])
    except (ValueError, RecursionError):
        return None
    value = doc.get("id") if isinstance(doc, dict) else None
    return value if isinstance(value, str) and _is_uuid(value) else None


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def parse(data: bytes) -> Order:
    """Structure only (no cryptography): size, JSON, fields, types, times, action, arguments."""
    if len(data) > MAX_BYTES:
        raise OrderRefused(OVERSIZED, f"{len(data)} bytes, an order is at most {MAX_BYTES}")
    try:
        doc = strict_loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise OrderRefused(MALFORMED, f"not an order: {str(exc)[:120]}") from exc
    if not isinstance(doc, dict):
        raise OrderRefused(MALFORMED, "not a JSON object")
    _check_form(doc)
    return Order(doc)


def _check_form(doc: dict[str, Any]) -> None:
    order_id = doc.get("id") if isinstance(doc.get("id"), str) else None

    def bad(why: str, code: str = MALFORMED) -> OrderRefused:
        return OrderRefused(code, why, order_id if order_id and _is_uuid(order_id) else None)

    if doc.get("format") != FORMAT:
        raise bad(f"format is not {FORMAT}")
    expected = set(_FIELDS) - ({"signatures"} if "signatures" not in doc else set())
    unknown = set(doc) - set(_FIELDS)
    if unknown:
        raise bad(f"unknown field {sorted(unknown)[0]!r}")
    for name in expected:
        if name not in doc:
            raise bad(f"field {name!r} is missing")
        if not isinstance(doc[name], _FIELDS[name]):
            raise bad(f"field {name!r} is not a {_FIELDS[name].__name__}")
    if not order_id or not _is_uuid(order_id):
        raise bad("id is not a UUID")
    times = {}
    for name in ("issued", "not_before", "not_after"):
        try:
            times[name] = parse_rfc3339_ns(doc[name])
        except (ValueError, OverflowError, OSError) as exc:
            raise bad(f"{name} is not an RFC 3339 time") from exc
    if times["not_after"] <= times["not_before"]:
        raise bad("not_after is not after not_before")
    if times["not_after"] - times["not_before"] > MAX_VALIDITY:
        raise bad("valid for more than 7 days")
    issuer = doc["issuer"]
    if set(issuer) != set(_IDENTITY) or not all(isinstance(issuer[k], str) for k in _IDENTITY):
        raise bad("issuer is not {name, role, organization, key}")
    targets = doc["targets"]
    if set(targets) != {"hosts", "groups"} or not all(
        isinstance(targets[k], list) and all(isinstance(v, str) and v for v in targets[k])
        for k in ("hosts", "groups")
    ):
        raise bad("targets is not {hosts: [...], groups: [...]}")
    if not targets["hosts"] and not targets["groups"]:
        raise bad("the order names no host and no group")
    if not CASE_ID.match(doc["case"]):
        raise bad("case is not a usable case id")
    if doc["action"] not in ACTIONS:
        raise bad(f"action {doc['action'][:40]!r} is not one of {', '.join(ACTIONS)}", UNKNOWN_ACTION)
    allowed = ARGUMENTS[doc["action"]]
    for name, value in doc["arguments"].items():
        kind = allowed.get(name)
        if kind is None:
            raise bad(f"argument {name!r} is not one {doc['action']} takes")
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise bad(f"argument {name!r} is not a {kind.__name__}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise bad(f"argument {name!r} is not a list of strings")
    if "signatures" in doc:
        sigs = doc["signatures"]
        if not sigs:
            raise bad("the order is not signed", BAD_SIGNATURE)
        if len(sigs) > MAX_SIGNATURES:
            raise bad(f"more than {MAX_SIGNATURES} signatures")
        for s in sigs:
            if (
                not isinstance(s, dict)
                or set(s) != set(_SIGNATURE)
                or not all(isinstance(s[k], str) for k in _SIGNATURE)
            ):
                raise bad("a signature is not {key, public_key, sig, name, role, organization}")


def verify_signatures(doc: dict[str, Any]) -> list[str]:
    """Every signature must hold and name its own key; returns their fingerprints in order."""
    body = body_bytes(doc)
    order_id = str(doc["id"])
    found: list[str] = []
    for s in doc["signatures"]:
        try:
            raw = base64.b64decode(s["public_key"], validate=True)
            sig = base64.b64decode(s["sig"], validate=True)
            public = public_from_raw(raw)
        except (binascii.Error, ValueError) as exc:
            raise OrderRefused(
                BAD_SIGNATURE, f"signature by {s['key'][:80]} is unreadable", order_id
            ) from exc
        if fingerprint(raw) != s["key"]:
            raise OrderRefused(BAD_SIGNATURE, f"the key given for {s['key'][:80]} is another key", order_id)
        if not verify_signature(public, sig, body):
            raise OrderRefused(BAD_SIGNATURE, f"signature by {s['key']} does not match the order", order_id)
        found.append(s["key"])
    if doc["issuer"]["key"] != found[0]:
        raise OrderRefused(BAD_SIGNATURE, "the first signature is not the issuer's", order_id)
    return found


def check(
    data: bytes,
    *,
    trust: OrderTrust,
    host: str,
    groups: Collection[str] = (),
    now: int | None = None,
) -> Order:
    """The order in `data` if this host must carry it out, else OrderRefused saying why.

    Checks run from the cheapest and least revealing up: form, signatures, trust, time, target."""
    order = parse(data)
    doc = order.doc
    if "signatures" not in doc:
        raise OrderRefused(BAD_SIGNATURE, "the order is not signed", order.id)
    signed = verify_signatures(doc)
    if signed[0] not in trust.keys:
        raise OrderRefused(
            UNTRUSTED_ISSUER, f"issuer {doc['issuer']['name'][:80]} ({signed[0]}) may not command", order.id
        )
    trusted = list(dict.fromkeys(k for k in signed if k in trust.keys))
    need = trust.required(order.action)
    if len(trusted) < need:
        raise OrderRefused(
            INSUFFICIENT_SIGNATURES,
            f"{order.action} needs {need} trusted signers, the order has {len(trusted)}",
            order.id,
        )
    t = now_ns() if now is None else now
    if t >= order.not_after_ns:
        raise OrderRefused(EXPIRED, f"expired at {doc['not_after']}", order.id)
    if t + CLOCK_SKEW < parse_rfc3339_ns(doc["not_before"]):
        raise OrderRefused(NOT_YET_VALID, f"valid from {doc['not_before']}", order.id)
    targets = doc["targets"]
    if host not in targets["hosts"] and not set(groups) & set(targets["groups"]):
        raise OrderRefused(OTHER_HOST, f"the order is not for {host}", order.id)
    return Order(doc, trusted)


def describe(doc: Mapping[str, Any]) -> str:
    """What `sealbox order show` prints."""
    targets = doc.get("targets") or {}
    lines = [
        f"order {doc.get('id')}: {doc.get('action')} (case {doc.get('case')})",
        f"issued {doc.get('issued')} by {_who(doc.get('issuer') or {})}",
        f"valid {doc.get('not_before')} .. {doc.get('not_after')}",
        "hosts: " + (", ".join(targets.get("hosts") or []) or "-"),
        "groups: " + (", ".join(targets.get("groups") or []) or "-"),
        "arguments: " + json.dumps(doc.get("arguments") or {}, sort_keys=True),
        f"reason: {doc.get('reason') or '-'}",
    ]
    lines += [f"signed by {_who(s)}" for s in doc.get("signatures") or []]
    return "\n".join(lines)


def _who(who: Mapping[str, Any]) -> str:
    extra = ", ".join(str(who[k]) for k in ("role", "organization") if who.get(k))
    return f"{who.get('name')}" + (f" ({extra})" if extra else "") + f" {who.get('key')}"
