"""BagIt 1.0 (RFC 8493) tag files as sealbox writes and reads them."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
MANIFEST = "manifest-sha256.txt"
TAGMANIFEST = "tagmanifest-sha256.txt"
SIG = "tagmanifest-sha256.txt.sig"
MINISIG = "tagmanifest-sha256.txt.minisig"
TSR = "tagmanifest-sha256.txt.tsr"
CONTINUATION = "custody/continuation.jsonl"
# The suffix of a bundle directory while it is written; renaming it away is what seals (FORMAT.md §1).
INCOMPLETE = ".incomplete"
# Tag files outside the tagmanifest: the signatures over it, the timestamp, and the live log.
NOT_IN_TAGMANIFEST = frozenset({TAGMANIFEST, SIG, MINISIG, TSR, CONTINUATION})


def bag_info_text(fields: list[tuple[str, str]]) -> bytes:
    lines = []
    for label, value in fields:
        clean = " ".join(str(value).split())  # one line per field, no CR/LF smuggled in
        lines.append(f"{label}: {clean}")
    return ("\n".join(lines) + "\n").encode()


def parse_bag_info(data: bytes) -> dict[str, str]:
    info: dict[str, str] = {}
    last = None
    for line in data.decode("utf-8", "replace").splitlines():
        if line[:1] in (" ", "\t") and last:
            info[last] += " " + line.strip()
            continue
        label, sep, value = line.partition(":")
        if sep:
            last = label.strip()
            info[last] = value.strip()
    return info


def manifest_line(digest: str, rel: str) -> bytes:
    """One manifest line, `<sha256>  <path>`: what `sha256sum` writes and `sha256sum -c` reads."""
    return f"{digest}  {rel}\n".encode()


_LINE = re.compile(r"([0-9a-f]{64})  (.+)")
_LINES = re.compile(r"^([0-9a-f]{64})  (.+)$", re.MULTILINE)


def parse_manifest(data: bytes) -> Iterator[tuple[int, str, str | None]]:
    """(line number, path, hash) per line; hash None when the line is malformed."""
    text = data.decode("utf-8", "replace")
    lines = text.splitlines()
    pairs = _LINES.findall(text)
    if len(pairs) == len(lines):  # every line well formed (a bad one or an odd line break differs)
        for number, (digest, rel) in enumerate(pairs, start=1):
            yield number, rel, digest
        return
    for number, raw in enumerate(lines, start=1):
        match = _LINE.fullmatch(raw)
        if match is None:
            yield number, raw, None
        else:
            yield number, match.group(2), match.group(1)


def tag_files(bundle: Path) -> list[str]:
    """Every tag file that belongs in the tagmanifest, sorted, as bag-relative paths."""
    out = []
    stack = [""]
    while stack:  # never descends into data/: the payload can hold millions of files
        rel_dir = stack.pop()
        for entry in os.scandir(bundle / rel_dir if rel_dir else bundle):
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.is_dir(follow_symlinks=False):
                if rel != "data":
                    stack.append(rel)
            elif rel not in NOT_IN_TAGMANIFEST:
                out.append(rel)
    return sorted(out)
