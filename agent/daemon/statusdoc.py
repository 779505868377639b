"""Signed status documents (FORMAT.md §11.3): what a host did with an order, and its heartbeat.

Signed as custody events are: Ed25519 over the canonical bytes of the document without `sig`,
the agent's raw public key beside its fingerprint so anyone can check it offline."""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from manifest import __version__
from manifest.format.canonical import canonical_bytes
from manifest.format.timefmt import now_rfc3339
from manifest.signing.keys import fingerprint, public_from_raw, verify_signature

if TYPE_CHECKING:
    from manifest.signing.keys import Signer

FORMAT = "sealbox-status/1"
KINDS = ("accepted", "result", "refusal", "heartbeat", "drift")
MAX_BYTES = 256 * 1024


def make_status(
    signer: Signer,
    *,
    host: str,
    kind: str,
    order: str | None = None,
    action: str | None = None,
    result: str = "",
    code: str = "",
    message: str = "",
    details: dict[str, Any] | None = None,
    time: str | None = None,
) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown status kind {kind}")
    body: dict[str, Any] = {
        "format": FORMAT,
        "host": host,
        "kind": kind,
        "time": time or now_rfc3339(),
        "order": order,
        "action": action,
        "result": result,
        "code": code,
        "message": message,
        "details": details or {},
        "agent": {**signer.identity.as_actor(), "public_key": signer.public_b64(), "version": __version__},
    }
    body["sig"] = base64.b64encode(signer.sign(canonical_bytes(body))).decode()
    return body


def status_bytes(doc: dict[str, Any]) -> bytes:
    return canonical_bytes(doc) + b"\n"


def check_status(data: bytes) -> tuple[dict[str, Any] | None, str]:
    """(document, "") when it parses and its signature holds, else (None or the doc, the problem).
    Who the agent key belongs to is the reader's question (the fleet's list of its agents)."""
    if len(data) > MAX_BYTES:
        return None, "larger than a status document can be"
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None, "not JSON"
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return None, f"not a {FORMAT} document"
    agent, sig = doc.get("agent"), doc.get("sig")
    if not isinstance(agent, dict) or not isinstance(sig, str):
        return doc, "unsigned"
    try:
        raw = base64.b64decode(str(agent.get("public_key")), validate=True)
        public = public_from_raw(raw)
        signature = base64.b64decode(sig, validate=True)
        body = canonical_bytes({k: v for k, v in doc.items() if k != "sig"})
    except (binascii.Error, ValueError, TypeError):
        return doc, "signature unreadable"
    except Exception:  # a float or another non-canonical value: not signed by sealbox
        return doc, "not canonical"
    if fingerprint(raw) != agent.get("key"):
        return doc, "the agent key given is another key"
    if not verify_signature(public, signature, body):
        return doc, "signature does not match"
    return doc, ""
