"""Stored payload names (SPEC §1): original path bytes -> a portable, manifest-safe bag path."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Bytes that are always escaped; anything >= 0x80 takes the slow path (UTF-8 check, C1 controls).
_UNSAFE = re.compile(rb'[\x00-\x1f\x7f%=<>:"\\|?*\x80-\xff]')
_SPECIAL = frozenset('%=<>:"\\|?*')
_DRIVE = re.compile(rb"^([A-Za-z]):[\\/]")


def _escape(data: bytes) -> str:
    return "".join(f"={b:02X}" for b in data)


# Besides controls (Cc, which holds U+0085), the line and paragraph separators: Python's
# str.splitlines and other readers end a manifest line there (SPEC §8 amendment 7).
_ESCAPED_CATEGORIES = frozenset(("Cc", "Zl", "Zp"))


def _escape_end(out: list[str]) -> None:
    """A name that ends in a space or dot cannot exist on Windows, and bagit.py strips trailing
    white space (Unicode's too) from manifest lines: the last character is escaped."""
    last = out[-1] if out else ""
    if len(last) == 1 and (last in " ." or last.isspace()):
        out[-1] = _escape(last.encode("utf-8"))


def encode_component(name: bytes) -> str:
    """One path component, escaped so it is valid UTF-8 without controls, line separators,
    Windows-illegal characters or a trailing space or dot, and in Unicode NFC."""
    if not _UNSAFE.search(name):
        text = name.decode("ascii")
        return text[:-1] + _escape(name[-1:]) if text.endswith((" ", ".")) else text
    out: list[str] = []
    i = 0
    n = len(name)
    while i < n:
        b = name[i]
        if b < 0x80:
            ch = chr(b)
            out.append(_escape(name[i : i + 1]) if b < 0x20 or b == 0x7F or ch in _SPECIAL else ch)
            i += 1
            continue
        length = 2 if 0xC2 <= b <= 0xDF else 3 if 0xE0 <= b <= 0xEF else 4 if 0xF0 <= b <= 0xF4 else 0
        chunk = name[i : i + length] if length else b""
        try:
            ch = chunk.decode("utf-8") if length and len(chunk) == length else ""
        except UnicodeDecodeError:
            ch = ""
        if not ch:
            out.append(_escape(name[i : i + 1]))
            i += 1
            continue
        out.append(_escape(chunk) if unicodedata.category(ch) in _ESCAPED_CATEGORIES else ch)
        i += length
    if not unicodedata.is_normalized("NFC", "".join(out)):
        # bagit.py and macOS compare names after normalization: `é` and `e` + U+0301 would be one
        # name to them. A name not in NFC keeps only ASCII characters, so no two stored names meet.
        out = [_escape(part.encode("utf-8")) if len(part) == 1 and ord(part) > 0x7F else part for part in out]
    _escape_end(out)
    return "".join(out)


# Longer stored paths, or a component longer than NAME_MAX once escaped, could not be opened in
# one call (PATH_MAX is 4096 bytes, less the bundle's own path) by sealbox or by sha256sum -c.
MAX_STORED = 3000
PAYLOAD_FILE_DIRS = ("data/files", "data/long")  # where copies of files go (volatile has its own)
NAME_MAX = 255
_OVER_NAME_MAX = re.compile(rb"[^/]{%d,}" % (NAME_MAX + 1))  # a component longer than NAME_MAX bytes
_LONG_NAME = 100  # bytes of the escaped file name kept after the digest, for the reader's sake


def stored_path(original: bytes) -> str:
    """`/var/log/a b` -> `data/files/var/log/a b`; `C:\\Users\\x` -> `data/files/C/Users/x`. A path too
    long to store as it is (deep trees are a way to hide files) goes to `data/long/` instead, named
    by the SHA-256 of its original bytes and the start of its file name; items.jsonl keeps it."""
    rel = _stored_path(original)
    if len(rel) > NAME_MAX and (
        len(encoded := rel.encode()) > MAX_STORED or _OVER_NAME_MAX.search(encoded) is not None
    ):
        return long_stored_path(original)
    return rel


def long_stored_path(original: bytes) -> str:
    """`data/long/<sha256 of the original path>-<file name, escaped, cut to 100 bytes>`."""
    name = encode_component(original.replace(b"\\", b"/").rstrip(b"/").rpartition(b"/")[2])
    while len(name.encode()) > _LONG_NAME:
        name = name[:-1]
    name = re.sub("=[0-9A-F]?$", "", name)  # no escape cut in half
    while name and (name[-1] in " ." or name[-1].isspace()):  # nor a trailing space or dot (SPEC §1)
        name = name[:-1]
    return f"data/long/{hashlib.sha256(original).hexdigest()}-{name}".rstrip("-")


def _stored_path(original: bytes) -> str:
    if (
        not _UNSAFE.search(original)
        and original.startswith(b"/")
        and b"//" not in original
        and b"/." not in original
        and not original.endswith((b"/", b" ", b"."))
        and b" /" not in original
        and b"./" not in original
    ):
        return "data/files" + original.decode("ascii")  # the common case: nothing to escape
    drive = _DRIVE.match(original)
    if drive:
        rest = original[drive.end() :].replace(b"\\", b"/")
        parts = [drive.group(1).upper()] + [p for p in rest.split(b"/") if p]
        return "data/files/" + "/".join([parts[0].decode()] + [encode_component(p) for p in parts[1:]])
    parts = [p for p in original.split(b"/") if p and p != b"."]
    if any(p == b".." for p in parts):
        raise ValueError(f"path {original!r} holds '..'")
    return "data/files/" + "/".join(encode_component(p) for p in parts)


def decode_component(text: str) -> bytes:
    """Inverse of `encode_component` (for tests and investigators' tools)."""
    return re.sub(rb"=([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))
