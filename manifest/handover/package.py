"""Export packages (SPEC §7): writing a deterministic POSIX tar and extracting one safely.

A package comes from outside, so extraction trusts nothing in it: every header is checked
before a single byte is written, only plain directories and regular files are created, and
everything goes into a fresh quarantine directory that is removed again on failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING

from manifest.errors import PackageError

if TYPE_CHECKING:
    from collections.abc import Iterable

GIB = 1 << 30
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What a package may hold; anything beyond is refused before extraction starts."""

    max_entries: int = 50_000
    max_entry_bytes: int = 16 * GIB
    max_total_bytes: int = 64 * GIB


def _tarinfo(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = st.st_mtime_ns // 1_000_000_000  # whole seconds: no float pax mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.type = tarfile.REGTYPE
        info.mode = 0o644 if st.st_mode & 0o222 else 0o444
        info.size = st.st_size
    return info


def bundle_entries(bundle_dir: Path) -> list[tuple[str, Path]]:
    """Archive name -> file for the bundle directory, refusing anything but files and dirs."""
    entries = [(bundle_dir.name, bundle_dir)]
    for root, dirs, files in os.walk(bundle_dir):
        dirs.sort()
        for name in dirs + sorted(files):
            full = Path(root) / name
            st = full.lstat()
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                raise PackageError(
                    f"{full} is neither a regular file nor a directory",
                    "a package holds only files and directories; is this bundle altered?",
                )
            entries.append((f"{bundle_dir.name}/{full.relative_to(bundle_dir).as_posix()}", full))
    return entries


def write_tar(
    out: IO[bytes],
    entries: Iterable[tuple[str, Path]],
    extra: dict[str, bytes],
    replaced: dict[str, bytes] | None = None,
) -> None:
    """POSIX pax tar of `entries` (files and dirs) plus in-memory `extra` files, sorted by name.
    An entry named in `replaced` keeps its file's mode and time and takes the bytes given (the
    export's custody log, which ends in an event not yet in the bundle's own)."""
    import io

    replaced = replaced or {}

    rows: list[tuple[str, Path | bytes]] = [*entries, *extra.items()]
    rows.sort(key=lambda row: row[0].encode("utf-8"))
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, source in rows:
            if isinstance(source, bytes):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(source), 0o444, int(time.time())
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(source))
                continue
            st = source.lstat()
            info = _tarinfo(name, st)
            if info.isdir():
                tar.addfile(info)
            elif name in replaced:
                info.size = len(replaced[name])
                tar.addfile(info, io.BytesIO(replaced[name]))
            else:
                with source.open("rb") as fh:
                    tar.addfile(info, fh)


# -- safe extraction ------------------------------------------------------------


def _check_name(name: str) -> str:
    """The normalized relative name, or PackageError saying exactly what is wrong."""
    if not name or "\x00" in name:
        raise PackageError(f"package entry '{name!r}' has an empty or NUL name")
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        raise PackageError(
            f"package entry '{name}' is an absolute path", "refused: it would escape the target"
        )
    if "\\" in name:
        raise PackageError(f"package entry '{name}' contains a backslash", "refused: ambiguous path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PackageError(f"package entry '{name}' contains '..'", "refused: it would escape the target")
    if not parts:
        raise PackageError(f"package entry '{name}' names no file")
    return "/".join(parts)


_KIND = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.CONTTYPE: "a contiguous file",
}


def scan(tar: tarfile.TarFile, limits: Limits) -> list[tarfile.TarInfo]:
    """Every member checked against the rules; nothing is written. Stops at the first problem."""
    members: list[tarfile.TarInfo] = []
    seen: dict[str, bool] = {}  # normalized name -> is a directory
    total = 0
    while True:
        try:
            member = tar.next()
        except tarfile.TarError as exc:
            raise PackageError(f"the package is not a readable tar archive ({exc})") from exc
        if member is None:
            break
        if len(members) >= limits.max_entries:
            raise PackageError(
                f"the package holds more than {limits.max_entries} entries",
                "refused; raise --max-entries if this many files are expected",
            )
        name = _check_name(member.name)
        if member.type in _KIND:
            target = f" -> {member.linkname}" if member.linkname else ""
            raise PackageError(f"package entry '{member.name}' is {_KIND[member.type]}{target}", "refused")
        if member.issparse() or any(key.startswith("GNU.sparse") for key in member.pax_headers):
            raise PackageError(
                f"package entry '{member.name}' is a sparse file claiming {member.size} bytes", "refused"
            )
        if not (member.isreg() or member.isdir()):
            raise PackageError(
                f"package entry '{member.name}' has unsupported type {member.type!r}", "refused"
            )
        if name in seen:
            raise PackageError(f"package entry '{member.name}' appears twice", "refused: ambiguous content")
        parent = name.rpartition("/")[0]
        while parent:
            if seen.get(parent) is False:
                raise PackageError(f"package entry '{member.name}' lies under the file '{parent}'", "refused")
            parent = parent.rpartition("/")[0]
        seen[name] = member.isdir()
        if member.size > limits.max_entry_bytes:
            raise PackageError(
                f"package entry '{member.name}' is {member.size} bytes, over the limit of "
                f"{limits.max_entry_bytes}",
                "refused; raise --max-entry-size if this is expected",
            )
        total += member.size
        if total > limits.max_total_bytes:
            raise PackageError(
                f"the package holds more than {limits.max_total_bytes} bytes",
                "refused; raise --max-total-size",
            )
        member.name = name
        members.append(member)
    if not members:
        raise PackageError("the package is empty")
    return members


def extract_into(tar: tarfile.TarFile, members: list[tarfile.TarInfo], target: Path) -> None:
    """Create the scanned members under `target` (which must exist and be empty)."""
    dir_modes: list[tuple[Path, int]] = []
    for member in members:
        path = target / member.name
        if member.isdir():
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            dir_modes.append((path, member.mode & 0o755 | 0o500))
            continue
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        src = tar.extractfile(member)
        if src is None:  # pragma: no cover - scan admits only regular files here
            raise PackageError(f"package entry '{member.name}' has no content")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as dst:
            left = member.size
            while left:
                chunk = src.read(min(_CHUNK, left))
                if not chunk:
                    raise PackageError(f"package entry '{member.name}' is truncated")
                dst.write(chunk)
                left -= len(chunk)
        path.chmod(member.mode & 0o644 | 0o400)
        os.utime(path, (member.mtime, member.mtime))
    for path, mode in reversed(dir_modes):
        path.chmod(mode)


def safe_extract(tar_file: IO[bytes], target: Path, limits: Limits | None = None) -> list[str]:
    """Check every header, then extract into the new directory `target`; on failure remove it."""
    limits = limits or Limits()
    try:
        with tarfile.open(fileobj=tar_file, mode="r:") as tar:
            members = scan(tar, limits)
            _check_trailer(tar_file, tar.offset)
    except tarfile.TarError as exc:
        raise PackageError(f"the package is not a readable tar archive ({exc})") from exc
    tar_file.seek(0)
    target.mkdir(mode=0o700)
    try:
        with tarfile.open(fileobj=tar_file, mode="r:") as tar:
            # Same file, same headers: re-read them so extraction uses exactly what was scanned.
            again = scan(tar, limits)
            if [(m.name, m.size, m.offset_data) for m in again] != [
                (m.name, m.size, m.offset_data) for m in members
            ]:
                raise PackageError("the package changed while it was being read")
            extract_into(tar, again, target)
    except (OSError, ValueError, OverflowError, tarfile.TarError) as exc:
        remove_tree(target)
        raise PackageError(f"extracting the package failed: {exc}") from exc
    except BaseException:
        remove_tree(target)
        raise
    return [m.name for m in members]


def _check_trailer(tar_file: IO[bytes], end: int) -> None:
    """After the end-of-archive marker only zero padding may follow: nothing hidden, nothing added."""
    tar_file.seek(end)
    while chunk := tar_file.read(_CHUNK):
        if chunk.count(0) != len(chunk):
            raise PackageError("the package has data after the end of the tar archive", "refused")


def remove_tree(path: Path) -> None:
    """Remove a quarantine tree we created (read-only modes included)."""
    if not path.exists():
        return
    for root, dirs, _files in os.walk(path):
        for d in dirs:
            with contextlib.suppress(OSError):
                (Path(root) / d).chmod(0o700)
    with contextlib.suppress(OSError):
        path.chmod(0o700)
    shutil.rmtree(path, ignore_errors=True)
