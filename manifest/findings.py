"""Typed verification findings: every check reports all of its problems, each naming the place."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FindingKind(StrEnum):
    """Every kind of finding sealbox reports; the value is the stable name machines read."""

    # the bundle as a whole and its declarations
    BUNDLE_INCOMPLETE = "bundle-incomplete"
    NOT_REGULAR_FILE = "not-regular-file"
    TAG_FILE_MISSING = "tag-file-missing"
    TAG_FILE_TOO_LARGE = "tag-file-too-large"
    BAGIT_DECLARATION = "bagit-declaration"
    BAG_INFO_FIELD_MISSING = "bag-info-field-missing"
    BAG_INFO_FIELD_INVALID = "bag-info-field-invalid"
    FORMAT_UNSUPPORTED = "format-unsupported"
    # manifests
    MANIFEST_LINE_MALFORMED = "manifest-line-malformed"
    UNSAFE_PATH = "unsafe-path"
    MANIFEST_DUPLICATE = "manifest-duplicate"
    TAG_FILE_CHANGED = "tag-file-changed"
    TAG_FILE_UNLISTED = "tag-file-unlisted"
    TAG_FILE_UNPROTECTED = "tag-file-unprotected"
    # signer and signatures
    SIGNER_KEY_MISSING = "signer-key-missing"
    SIGNER_KEY_INVALID = "signer-key-invalid"
    SIGNER_MISMATCH = "signer-mismatch"
    SIGNER_UNTRUSTED = "signer-untrusted"
    SIGNATURE_MISSING = "signature-missing"
    SIGNATURE_INVALID = "signature-invalid"
    MINISIGN_INVALID = "minisign-invalid"
    # payload
    PAYLOAD_UNLISTED = "payload-unlisted"
    PAYLOAD_MISSING = "payload-missing"
    PAYLOAD_OXUM = "payload-oxum"
    PAYLOAD_SIZE_MISMATCH = "payload-size-mismatch"
    PAYLOAD_UNREADABLE = "payload-unreadable"
    PAYLOAD_CHANGED = "payload-changed"
    # items.jsonl
    ITEMS_UNREADABLE = "items-unreadable"
    ITEMS_ORDER = "items-order"
    ITEM_FIELD_INVALID = "item-field-invalid"
    ITEM_DISAGREES = "item-disagrees"
    ITEM_STORED_TWICE = "item-stored-twice"
    ITEM_MISSING = "item-missing"
    # custody (the chain itself is checked by manifest.signing.custody.verify_chain)
    CUSTODY_MISSING = "custody-missing"
    CUSTODY_UNREADABLE = "custody-unreadable"
    CUSTODY_LINK_BROKEN = "custody-link-broken"
    CUSTODY_SEQ_GAP = "custody-seq-gap"
    CUSTODY_SIGNATURE_INVALID = "custody-signature-invalid"
    CUSTODY_NOT_CANONICAL = "custody-not-canonical"
    CUSTODY_WRONG_BUNDLE = "custody-wrong-bundle"
    CUSTODY_EVENT_UNTRUSTED = "custody-event-untrusted"
    CUSTODY_LINE_ENDING = "custody-line-ending"
    CUSTODY_NOT_UTF8 = "custody-not-utf8"
    CUSTODY_FIELD_INVALID = "custody-field-invalid"
    CUSTODY_LINE_PARTIAL = "custody-line-partial"
    CUSTODY_TAIL_TRUNCATED = "custody-tail-truncated"
    CUSTODY_RECEIPT_MISMATCH = "custody-receipt-mismatch"
    CUSTODY_DETAILS_INVALID = "custody-details-invalid"
    CUSTODY_ACCEPT_UNMATCHED = "custody-accept-unmatched"
    CUSTODY_ACCEPT_WRONG_KEY = "custody-accept-wrong-key"
    CUSTODY_ACCEPT_REPEATED = "custody-accept-repeated"
    RECEIPT_MALFORMED = "receipt-malformed"
    RECEIPT_INVALID = "receipt-invalid"
    RECEIPT_UNTRUSTED = "receipt-untrusted"
    RECEIPT_WRONG_BUNDLE = "receipt-wrong-bundle"
    SEALED_EVENT_MISSING = "sealed-event-missing"
    SEALED_EVENT_REPEATED = "sealed-event-repeated"
    SEALED_EVENT_MISPLACED = "sealed-event-misplaced"
    SEALED_EVENT_MISMATCH = "sealed-event-mismatch"
    SEALED_BY_OTHER_KEY = "sealed-by-other-key"
    # trusted timestamp (manifest.signing.timestamp)
    TIMESTAMP_UNREADABLE = "timestamp-unreadable"
    TIMESTAMP_MISMATCH = "timestamp-mismatch"
    TIMESTAMP_CA_UNREADABLE = "timestamp-ca-unreadable"
    TIMESTAMP_INVALID = "timestamp-invalid"
    TIMESTAMP_ORPHAN = "timestamp-orphan"
    # follow-up bundles (--previous)
    PREVIOUS_BUNDLE_UNLINKED = "previous-bundle-unlinked"
    PREVIOUS_BUNDLE_MISMATCH = "previous-bundle-mismatch"


_FILE_LINE = re.compile(r"(.+):([0-9]+)")
_ITEM = re.compile(r"item (\S+) \((.+):([0-9]+)\)")


@dataclass(frozen=True)
class Finding:
    """One problem: `kind` is stable for machines (a FindingKind, or a plain string for kinds not
    yet in the enum), `where` names the place for people; `path`, `lineno` and `item` name it for
    machines (derived from `where` when not given; `lineno` as in Python's own tracebacks, since
    `line()` is the one-line text callers print)."""

    kind: str
    where: str
    message: str
    expected: str | None = None
    found: str | None = None
    path: str | None = field(default=None, kw_only=True)
    lineno: int | None = field(default=None, kw_only=True)
    item: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.path is not None or self.lineno is not None or self.item is not None:
            return
        if m := _ITEM.fullmatch(self.where):
            path, line, item = m.group(2), int(m.group(3)), m.group(1)
        elif (m := _FILE_LINE.fullmatch(self.where)) and not self.where.startswith(("data/", "item ")):
            path, line, item = m.group(1), int(m.group(2)), None
        else:
            path, line, item = self.where, None, None
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "lineno", line)
        object.__setattr__(self, "item", item)

    def line(self) -> str:
        text = f"{self.kind}: {self.where}: {self.message}"
        if self.expected is not None or self.found is not None:
            text += f" (expected {self.expected}, found {self.found})"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "where": self.where,
            "message": self.message,
            "expected": self.expected,
            "found": self.found,
            "path": self.path,
            "line": self.lineno,
            "item": self.item,
        }
