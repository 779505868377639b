"""The walk: what is to be acquired, in order, each directory pinned to the one it was listed in.

It also holds the overlap contract between sources (`Overlap`, `nest_sources`): `collectors.expand`
plans sources that may overlap, and the walk yields each path once, under the most specific
source. Both halves of that rule live here, so neither side relies on the other's ordering silently.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import glob
import os
import stat
import unicodedata
from typing import TYPE_CHECKING

from collectors.acquire.records import DirId, Found, Source
from manifest.osio.mountns import pseudo_devices
from manifest.osio.readonly import open_noatime

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_PATH = getattr(os, "O_PATH", os.O_RDONLY)

OUTPUT = "output"
PSEUDO = "pseudo"


def text(path: bytes) -> str:
    """Readable text of a path; undecodable bytes become U+FFFD (the exact bytes go in *_b64)."""
    return path.decode("utf-8", "replace")


# ------------------------------------------------------------------ the overlap contract
def _inside(inner: Source, outer: Source) -> bool:
    return inner.windows == outer.windows and inner.path.startswith(outer.path.rstrip(b"/") + b"/")


def nest_sources(sources: Sequence[Source], dirs: Sequence[bool]) -> list[Source]:
    """Sources (`dirs[i]`: whether source i is a directory) made ready for `walk` so that each
    path is acquired once, under the most specific source: every source nested in a directory
    source goes before it, and that directory excludes it (by its exact text, as the walk
    matches excludes). So /var/log/audit keeps its own collector inside /var/log."""
    order: list[int] = []
    placed: set[int] = set()

    def place(i: int) -> None:
        if i in placed:
            return
        placed.add(i)
        if dirs[i]:
            for j, inner in enumerate(sources):
                if _inside(inner, sources[i]):
                    place(j)
        order.append(i)

    for i in range(len(sources)):
        place(i)
    out = []
    for i in order:
        src = sources[i]
        if dirs[i]:
            nested = [glob.escape(text(s.original)) for s in sources if _inside(s, src)]
            if nested:
                src = dataclasses.replace(src, excludes=(*src.excludes, *nested))
        out.append(src)
    return out


class Overlap:
    """What the walk has covered so far, so that overlapping sources yield each path once: a
    source that is not a directory is yielded once (a file named by two artifacts); a source
    inside a directory an earlier source walked whole is left out, and so is such a directory
    met again below a later source. `nest_sources` orders sources so that this never takes a
    path from a more specific source."""

    def __init__(self) -> None:
        self.whole: set[bytes] = set()  # directories walked whole, with a trailing "/"
        self.singles: set[bytes] = set()  # sources that are not directories: few

    def covers_source(self, path: bytes) -> bool:
        probe = path.rstrip(b"/") + b"/"
        return path in self.singles or any(probe.startswith(d) for d in self.whole)

    def single(self, path: bytes) -> None:
        self.singles.add(path)

    def walking(self, src: Source) -> None:
        if src.whole:
            self.whole.add(src.path.rstrip(b"/") + b"/")

    def covers_file(self, path: bytes) -> bool:
        return bool(self.singles) and path in self.singles

    def covers_dir(self, path: bytes) -> bool:
        return bool(self.whole) and path + b"/" in self.whole


# ------------------------------------------------------------------ the walk
def walk(
    sources: list[Source],
    on_error: Callable[[bytes, str], None] | None = None,
    skip: Skip | None = None,
    sizes: bool = False,
) -> Iterator[Found]:
    """Each source and everything below it, depth-first in sorted order, never following
    symlinks and listing directories with O_NOATIME so not even their atime moves. `skip`
    leaves out sealbox's own output, wherever it appears, and what is inside a pseudo filesystem
    (the mount point is yielded, nothing below it). `apart` is set for a name that differs from
    an earlier sibling's only in case, and for all below such a directory: its copy goes to
    data/long, so the bundle can be copied whole to exFAT, FAT, Windows or macOS. Files' sizes
    cost a stat each and are 0 unless `sizes` is set: the acquisition reads them in its workers,
    in parallel, and needs none here. Overlapping sources: see `Overlap`."""
    overlap = Overlap()
    for index, src in enumerate(sources):
        if not overlap.covers_source(src.path):
            yield from _TreeWalk(src, index, overlap, skip, on_error, sizes).run()


@dataclasses.dataclass
class _Dir:
    """A directory still to be listed."""

    path: bytes
    original: bytes
    depth: int
    listed_in: DirId | None
    apart: bool


class _TreeWalk:
    """The walk of one source (see `walk`)."""

    def __init__(
        self,
        src: Source,
        index: int,
        overlap: Overlap,
        skip: Skip | None,
        on_error: Callable[[bytes, str], None] | None,
        sizes: bool,
    ) -> None:
        self.src, self.index, self.overlap = src, index, overlap
        self.skip, self.on_error, self.sizes = skip, on_error, sizes
        self.excluded = src.excluder() if src.excludes else None
        self.sep = b"\\" if src.windows else b"/"

    def run(self) -> Iterator[Found]:
        src = self.src
        try:
            top = os.lstat(src.path)
        except OSError:
            self.overlap.single(src.path)
            yield Found(src.path, src.original, self.index, 0, None, False)  # the worker records the error
            return
        size = top.st_size if self.sizes and stat.S_ISREG(top.st_mode) else 0
        yield Found(src.path, src.original, self.index, size, None, False)
        if not stat.S_ISDIR(top.st_mode):
            self.overlap.single(src.path)
            return
        if src.max_depth == 0 or (self.skip is not None and self.skip.pseudo(src.path, top)):
            return  # a pseudo filesystem: only its inside could be our output
        self.overlap.walking(src)
        held = _HeldDirs()
        stack = [_Dir(src.path, src.original, 1, None, False)]
        try:
            while stack:
                yield from self._list(stack.pop(), held, stack)
        finally:
            held.close()

    def _list(self, d: _Dir, held: _HeldDirs, stack: list[_Dir]) -> Iterator[Found]:
        """The entries of directory `d`; its subdirectories to walk go on `stack`."""
        try:
            listed_from, entries, fd = _list_dir(d.path, d.listed_in, self.sizes, held.take(d.path))
        except OSError as exc:
            if self.on_error:
                self.on_error(d.path, exc.strerror or str(exc))
            return
        subdirs: list[_Dir] = []
        folded: set[str] = set()  # the names seen so far, case folded
        prefix = d.path.rstrip(b"/") + b"/"
        oprefix = d.original if d.original.endswith(self.sep) else d.original + self.sep
        descend = self.src.max_depth is None or d.depth < self.src.max_depth
        for name, is_dir, is_file, size in entries:
            orig = oprefix + name
            if self.excluded is not None and self.excluded(text(orig), text(name)):
                continue
            path = prefix + name
            key = _folded(name)
            apart = d.apart or key in folded
            folded.add(key)
            if not is_dir:
                if not self.overlap.covers_file(path):
                    yield Found(path, orig, self.index, size, listed_from, apart, is_file)
                continue
            if self.overlap.covers_dir(path):
                continue  # an earlier source walked it whole, its own item included
            why = self.skip.check(path, (fd, name)) if self.skip is not None else None
            if why == OUTPUT:
                continue
            yield Found(path, orig, self.index, 0, listed_from, apart)
            if why != PSEUDO and descend:
                subdirs.append(_Dir(path, orig, d.depth + 1, listed_from, apart))
        held.hold(d.path, fd, len(subdirs))
        stack.extend(reversed(subdirs))


class _HeldDirs:
    """Open directories of a walk whose subdirectories are still to be listed, so that each is
    listed through its parent's fd: by path, every level of a deep tree cost the kernel a walk
    of the whole path (and past PATH_MAX one open per component), so collection time grew with
    the square of the depth. At most `limit` are held; beyond that one is opened by path."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self.fds: dict[bytes, list[int]] = {}  # path -> [fd, subdirectories still to list]
        self._done: list[int] = []  # parents handed out for their last subdirectory

    def take(self, path: bytes) -> int | None:
        """The held fd of `path`'s parent, for listing `path`; None if it is not held."""
        parent = path.rstrip(b"/").rpartition(b"/")[0] or b"/"
        entry = self.fds.get(parent)
        if entry is None:
            return None
        entry[1] -= 1
        if entry[1] <= 0:  # its last subdirectory: closed once that one is open
            del self.fds[parent]
            self._done.append(entry[0])
        return entry[0]

    def hold(self, path: bytes, fd: int, subdirs: int) -> None:
        """Keep `path`'s fd for its `subdirs` subdirectories to come (or close it)."""
        self._release()
        if subdirs and len(self.fds) < self.limit:
            self.fds[path.rstrip(b"/") or b"/"] = [fd, subdirs]
        else:
            os.close(fd)

    def _release(self) -> None:
        for fd in self._done:
            os.close(fd)
        self._done.clear()

    def close(self) -> None:
        self._release()
        for fd, _left in self.fds.values():
            os.close(fd)
        self.fds.clear()


def _folded(name: bytes) -> str:
    """A name as filesystems that ignore case compare it: case folded, and in one Unicode
    normalization form (macOS takes `é` as one character or as `e` and an accent alike)."""
    decoded = name.decode("utf-8", "surrogateescape")
    return decoded.casefold() if decoded.isascii() else unicodedata.normalize("NFC", decoded).casefold()


class Skip:
    """What a walk leaves out, told apart by identity rather than by path, so another path to it
    (a symlinked --out, a bind mount) does not let it in: sealbox's own output (`paths`: not
    even an item), and the inside of pseudo filesystems such as /proc and /sys (their device
    numbers, `pseudo`: the mount point is an item, nothing below it). One lstat per directory
    walked: directories are few next to files."""

    def __init__(self, paths: list[Path], pseudo: frozenset[int] | None = None) -> None:
        self.ids: set[tuple[int, int]] = set()
        for path in paths:
            with contextlib.suppress(OSError):
                st = path.stat()
                self.ids.add((st.st_dev, st.st_ino))
        self.pseudo_devices = pseudo_devices() if pseudo is None else pseudo
        self.skipped: list[bytes] = []  # own output met on the way
        self.not_walked: list[bytes] = []  # pseudo filesystems met on the way

    def check(self, path: bytes, at: tuple[int, bytes] | None = None) -> str | None:
        """OUTPUT, PSEUDO or None (walk it) for the directory `path` met on the walk; `at` is
        (its parent's fd, its name), which reaches it in one step however deep it is."""
        try:
            st = os.lstat(at[1], dir_fd=at[0]) if at is not None else os.lstat(path)
        except OSError:
            return None
        if (st.st_dev, st.st_ino) in self.ids:
            self.skipped.append(path)
            return OUTPUT
        return PSEUDO if self.pseudo(path, st) else None

    def pseudo(self, path: bytes, st: os.stat_result) -> bool:
        """Whether directory `path` (its lstat `st`) is on a pseudo filesystem: not to be walked."""
        if st.st_dev not in self.pseudo_devices:
            return False
        self.not_walked.append(path)
        return True


# ------------------------------------------------------------------ identity pinning
def said(exc: OSError, message: str) -> OSError:
    """A symlink or file found where a directory was listed (ENOTDIR, ELOOP under O_NOFOLLOW),
    said in words; any other error as it is."""
    return OSError(exc.errno, message) if exc.errno in (errno.ENOTDIR, errno.ELOOP) else exc


REPLACED = "a directory was replaced by a non-directory (not followed)"
SWAPPED = "a directory was replaced after listing (not followed)"
_STEP = 3072  # bytes of path opened in one call: well under PATH_MAX


def _open_in_steps(path: bytes, per_component: bool = True) -> int:
    """An O_PATH fd of directory `path`, for a path longer than one call takes (PATH_MAX), as
    deep trees made to hide files are: one component at a time, none followed if it is a
    symlink; or, when the caller checks the identity of what it reaches (`per_component`
    False), a few thousand bytes of path at a time, so a deep path costs a few calls, not one
    per level."""
    fd = os.open(b"/" if path.startswith(b"/") else b".", _O_PATH | _O_DIRECTORY)
    try:
        parts = [p for p in path.split(b"/") if p]
        steps: list[bytes] = []
        for part in parts:
            if steps and not per_component and len(steps[-1]) + 1 + len(part) <= _STEP:
                steps[-1] += b"/" + part
            else:
                steps.append(part)
        for step_path in steps:
            step = os.open(step_path, _O_PATH | _O_DIRECTORY | _O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = step
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_identity(fd: int, listed: DirId | tuple[int, int] | None) -> int:
    """`fd` if it is the directory the walk listed (`listed`, when known); else it is closed
    and OSError says the directory was swapped."""
    if listed is not None:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != listed:
            os.close(fd)
            raise OSError(errno.ESTALE, SWAPPED)
    return fd


def open_listed_dir(path: bytes, listed: DirId | tuple[int, int] | None) -> int:
    """An O_PATH fd of directory `path`, checked to be the very directory the walk listed (whose
    identity is `listed`, when known). One swapped since, for another or for a symlink, raises
    OSError saying so, and is not followed."""
    try:
        try:
            fd = os.open(path, _O_PATH | _O_DIRECTORY | _O_NOFOLLOW)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            fd = _open_in_steps(path, per_component=listed is None)
    except OSError as exc:
        raise said(exc, REPLACED) from None
    return check_identity(fd, listed)


def _list_dir(
    path: bytes, listed_in: DirId | None, sizes: bool = False, parent_fd: int | None = None
) -> tuple[DirId, list[tuple[bytes, bool, bool, int]], int]:
    """The directory's identity, its (name, is a directory, is a regular file, size of a file
    or 0 when not asked for) sorted by name, and its open fd (the caller closes it). The types
    come from the listing itself where the filesystem gives them (no stat).
    It is opened through the directory it was listed in (`parent_fd`, that very directory held
    open, or its path checked to be it), so each level of the walk is pinned to the one above."""
    parent, _, name = path.rpartition(b"/")
    if listed_in is None or not name:
        fd = open_noatime(path, _O_DIRECTORY | _O_NOFOLLOW)
    else:
        opened = parent_fd is None
        if parent_fd is None:
            parent_fd = open_listed_dir(parent or b"/", listed_in)
        try:
            fd = open_noatime(name, _O_DIRECTORY | _O_NOFOLLOW, dir_fd=parent_fd)
        except OSError as exc:
            raise said(exc, "replaced by a non-directory after listing (not followed)") from None
        finally:
            if opened:
                os.close(parent_fd)
    try:
        st = os.fstat(fd)
        out = []
        with os.scandir(fd) as it:
            for entry in it:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = not is_dir and entry.is_file(follow_symlinks=False)
                size = 0
                if sizes and is_file:
                    try:
                        size = entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        size = 0
                out.append((os.fsencode(entry.name), is_dir, is_file, size))
    except BaseException:
        os.close(fd)
        raise
    out.sort()
    return DirId(st.st_dev, st.st_ino), out, fd
