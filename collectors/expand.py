"""Where artifacts are on one root: OS detection, users' homes, path globs -> acquisition sources.

The root is the live system (`/`) or a mounted image (`--root`). Symlinks inside the root are
resolved as if the root were `/` (a chroot), never towards the machine running sealbox, and the
original path recorded is the physical one (macOS `/var/log` becomes `/private/var/log`).
"""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from collectors.acquire import Source, nest_sources
from manifest.osio import readonly

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from collectors.artifacts import Artifact

_MAX_LINKS = 40
_MAX_GLOBSTAR_DEPTH = 16
_WILD = frozenset(b"*?[")


@dataclass(frozen=True)
class Target:
    """The system being collected from: its root on this machine and its OS."""

    root: bytes
    os: str | None
    live: bool

    @classmethod
    def at(cls, root: Path | None) -> Target:
        path = os.fsencode(root.absolute()) if root is not None else b"/"
        return cls(path, detect_os(path), path == b"/")

    def actual(self, comps: list[bytes]) -> bytes:
        return _join(self.root, comps)


@dataclass
class Plan:
    """Sources in acquisition order, what each artifact matched, and why some ran on nothing."""

    sources: list[Source] = field(default_factory=list)
    matched: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def _join(root: bytes, comps: list[bytes]) -> bytes:
    base = root.rstrip(b"/")
    return base + b"/" + b"/".join(comps) if comps else (base or b"/")


def _lstat(path: bytes) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _exists_ci(root: bytes, comps: list[bytes], name: bytes) -> bytes | None:
    """The on-disk spelling of `name` in a directory, matched case-insensitively (NTFS)."""
    if _lstat(_join(root, [*comps, name])) is not None:
        return name
    try:
        entries = readonly.list_dir(_join(root, comps))
    except OSError:
        return None
    lower = name.lower()
    for entry, _is_dir, _is_link in entries:
        if entry.lower() == lower:
            return entry
    return None


def detect_os(root: bytes) -> str | None:
    """linux, macos or windows from the root's layout; None when it is none of them."""
    if _exists_ci(root, [], b"Windows") and _exists_ci(root, [b"Windows"], b"System32"):
        return "windows"
    if _lstat(_join(root, [b"System", b"Library", b"CoreServices", b"SystemVersion.plist"])) or (
        _lstat(_join(root, [b"Users"])) and _lstat(_join(root, [b"private", b"var"]))
    ):
        return "macos"
    if _lstat(_join(root, [b"etc", b"os-release"])) or _lstat(_join(root, [b"etc", b"passwd"])):
        return "linux"
    return None


def resolve_in_root(root: bytes, comps: list[bytes]) -> list[bytes] | None:
    """Physical components of `comps` with every symlink resolved inside `root`; None on a loop."""
    todo = list(comps)
    done: list[bytes] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part in (b"", b"."):
            continue
        if part == b"..":
            if done:
                done.pop()
            continue
        st = _lstat(_join(root, [*done, part]))
        if st is not None and stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > _MAX_LINKS:
                return None
            try:
                target = os.readlink(_join(root, [*done, part]))  # noqa: PTH115 - bytes, not Path
            except OSError:
                return None
            if target.startswith(b"/"):
                done = []
            todo = [p for p in target.split(b"/") if p] + todo
            continue
        done.append(part)
    return done


def _dir_comps(root: bytes, comps: list[bytes], windows: bool) -> list[bytes] | None:
    """`comps` as a directory to descend into, following symlinks within the root (not on
    Windows, where links and junctions are left alone), or None."""
    st = _lstat(_join(root, comps))
    if st is None:
        return None
    if stat.S_ISDIR(st.st_mode):
        return comps
    if stat.S_ISLNK(st.st_mode) and not windows:
        real = resolve_in_root(root, comps)
        if real is not None:
            st = _lstat(_join(root, real))
            if st is not None and stat.S_ISDIR(st.st_mode):
                return real
    return None


def _match(root: bytes, comps: list[bytes], part: bytes, windows: bool) -> list[bytes]:
    if not _WILD.intersection(part):
        if windows:
            found = _exists_ci(root, comps, part)
            return [found] if found is not None else []
        return [part] if _lstat(_join(root, [*comps, part])) is not None else []
    try:
        entries = readonly.list_dir(_join(root, comps))
    except OSError:
        return []
    if windows:
        pat = part.lower()
        return [n for n, _d, _l in entries if fnmatch.fnmatchcase(n.lower(), pat)]
    return [n for n, _d, _l in entries if fnmatch.fnmatchcase(n, part)]


def _all_dirs(root: bytes, comps: list[bytes], depth: int = 0) -> list[list[bytes]]:
    """`comps` and every directory below it (symlinks not followed), for `**`."""
    out = [comps]
    if depth >= _MAX_GLOBSTAR_DEPTH:
        return out
    try:
        entries = readonly.list_dir(_join(root, comps))
    except OSError:
        return out
    for name, is_dir, _is_link in entries:
        if is_dir:
            out.extend(_all_dirs(root, [*comps, name], depth + 1))
    return out


def glob_in_root(root: bytes, start: list[bytes], parts: list[bytes], windows: bool) -> list[list[bytes]]:
    """Physical component lists under `root` matching `start` + `parts` (fnmatch per component,
    `**` any number of directories), sorted, without duplicates."""
    states = [start]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt: list[list[bytes]] = []
        for comps in states:
            if part == b"**":
                nxt.extend(_all_dirs(root, comps))
                continue
            for name in _match(root, comps, part, windows):
                found = [*comps, name]
                new = found if last else _dir_comps(root, found, windows)
                if new is not None:
                    nxt.append(new)
        seen: set[tuple[bytes, ...]] = set()
        states = []
        for comps in nxt:
            key = tuple(c.lower() for c in comps) if windows else tuple(comps)
            if key not in seen:
                seen.add(key)
                states.append(comps)
    return sorted(states)


def _passwd_homes(root: bytes) -> list[bytes]:
    try:
        data = readonly.read_bytes(_join(root, [b"etc", b"passwd"]), 4 * 1024 * 1024)
    except OSError:
        return []
    homes = []
    for line in data.splitlines():
        fields = line.split(b":")
        if len(fields) >= 6 and fields[5].startswith(b"/"):
            homes.append(fields[5])
    return homes


def user_homes(target: Target, os_name: str) -> list[list[bytes]]:
    """Every user's home as physical components: Linux passwd + /home/* + /root; macOS /Users/*
    + /var/root; Windows C:\\Users\\* (real directories only: 'All Users' is a junction)."""
    root = target.root
    windows = os_name == "windows"
    candidates: list[list[bytes]] = []
    if os_name == "linux":
        candidates += [[p for p in h.split(b"/") if p] for h in _passwd_homes(root)]
        candidates += glob_in_root(root, [], [b"home", b"*"], False)
        candidates.append([b"root"])
    elif os_name == "macos":
        candidates += glob_in_root(root, [], [b"Users", b"*"], False)
        candidates.append([b"private", b"var", b"root"])
    elif windows:
        candidates += glob_in_root(root, [], [b"Users", b"*"], True)
    homes: list[list[bytes]] = []
    seen: set[tuple[bytes, ...]] = set()
    for comps in candidates:
        real = _dir_comps(root, comps, windows)
        # The root directory is nobody's home worth walking (daemons with home "/").
        if not real or tuple(real) in seen:
            continue
        seen.add(tuple(real))
        homes.append(real)
    return sorted(homes)


def _split_pattern(pattern: str) -> tuple[bool, bool, list[bytes]]:
    """(starts at home, Windows path, components after the anchor)."""
    raw = os.fsencode(pattern)
    windows = raw.startswith(b"~\\") or (len(raw) > 2 and raw[1:3] == b":\\")
    sep = b"\\" if windows else b"/"
    parts = [p for p in raw.split(sep) if p]
    if parts and parts[0] == b"~":
        return True, windows, parts[1:]
    if windows:
        parts = parts[1:]  # the drive: a --root is the system drive's mount
    return False, windows, parts


def original_path(comps: list[bytes], windows: bool) -> bytes:
    if windows:
        return b"C:\\" + b"\\".join(comps)
    return b"/" + b"/".join(comps)


def plan_sources(
    artifacts: Iterable[Artifact],
    target: Target,
    *,
    max_file_size: int | None = None,
    since_ns: int | None = None,
) -> Plan:
    """Expand each artifact's globs on `target` into sources, first artifact wins a path.

    A more specific source inside a directory source (e.g. /var/log/audit inside /var/log)
    keeps its own artifact: the directory source excludes it, so no item is read twice and
    each item names the most specific collector.
    """
    plan = Plan()
    found: list[tuple[Artifact, list[bytes], bool, bool]] = []  # artifact, comps, windows, is_dir
    seen: set[tuple[bytes, ...]] = set()
    homes_cache: dict[str, list[list[bytes]]] = {}
    for art in artifacts:
        if not art.kind_of.reads_paths:
            continue
        if not art.applies_to(target.os):
            plan.notes[art.name] = f"not applicable: for {', '.join(art.os)}, target is {target.os}"
            continue
        matched: list[str] = []
        for pattern in art.paths:
            at_home, windows, parts = _split_pattern(pattern)
            if at_home:
                os_name = "windows" if windows else (target.os or "linux")
                if os_name not in homes_cache:
                    homes_cache[os_name] = user_homes(target, os_name)
                starts = homes_cache[os_name]
            else:
                starts = [[]]
            for start in starts:
                for comps in glob_in_root(target.root, start, parts, windows):
                    key = tuple(c.lower() for c in comps) if windows else tuple(comps)
                    if not comps or key in seen:
                        continue
                    seen.add(key)
                    st = _lstat(target.actual(comps))
                    is_dir = st is not None and stat.S_ISDIR(st.st_mode)
                    found.append((art, comps, windows, is_dir))
                    matched.append(os.fsdecode(original_path(comps, windows)))
                    if st is not None and stat.S_ISLNK(st.st_mode) and not windows:
                        # The link is kept as a symlink item; what it names inside the root is
                        # what the artifact is after (/etc/localtime -> zoneinfo file).
                        real = resolve_in_root(target.root, comps)
                        real_st = _lstat(target.actual(real)) if real else None
                        if (
                            real
                            and real_st
                            and tuple(real) not in seen
                            and (stat.S_ISREG(real_st.st_mode) or stat.S_ISDIR(real_st.st_mode))
                        ):
                            seen.add(tuple(real))
                            found.append((art, real, False, stat.S_ISDIR(real_st.st_mode)))
                            matched.append(os.fsdecode(original_path(real, False)))
        plan.matched[art.name] = matched
        if not matched:
            plan.notes[art.name] = "nothing found"

    # Sources may nest (/var/log/audit in /var/log); the walk's overlap contract takes each
    # path once, under its most specific source, given sources ordered and excluded for it.
    sources = []
    for art, comps, windows, _is_dir in found:
        limit = art.max_file_size
        if max_file_size is not None:
            limit = max_file_size if limit is None else min(limit, max_file_size)
        sources.append(
            Source(
                path=target.actual(comps),
                original=original_path(comps, windows),
                collector=art.collector,
                max_depth=art.max_depth,
                excludes=art.excludes,
                max_file_size=limit,
                since_ns=since_ns,
                windows=windows,
            )
        )
    plan.sources = nest_sources(sources, [is_dir for *_rest, is_dir in found])
    return plan
