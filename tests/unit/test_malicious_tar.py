"""Malicious packages built here: each is refused before anything is written outside the target."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from manifest.errors import PackageError
from manifest.handover.package import Limits, safe_extract
from tests.support.env import require_tool


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, None


def tar_with_dotdot_entry() -> bytes:
    return _tar([_file("B/bagit.txt"), _file("B/../../escaped.txt")])


def tar_with_absolute_path() -> bytes:
    return _tar([_file("B/bagit.txt"), _file("/tmp/sealbox-absolute-escape.txt")])


def tar_with_symlink_to_etc() -> bytes:
    return _tar([_file("B/bagit.txt"), _special("B/etc", tarfile.SYMTYPE, "/etc"), _file("B/etc/cron.d/x")])


def tar_with_hardlink_outside() -> bytes:
    return _tar([_file("B/bagit.txt"), _special("B/passwd", tarfile.LNKTYPE, "../../../../etc/passwd")])


def tar_with_device_node() -> bytes:
    return _tar([_file("B/bagit.txt"), _special("B/null", tarfile.CHRTYPE)])


def tar_with_duplicate_entry() -> bytes:
    return _tar([_file("B/bagit.txt", b"first"), _file("B/bagit.txt", b"second")])


def tar_with_entry_appended_after_end() -> bytes:
    return _tar([_file("B/bagit.txt")]) + _tar([_file("B/extra.txt")])


MALICIOUS = {
    "dotdot_entry": (tar_with_dotdot_entry, "package entry 'B/../../escaped.txt' contains '..'"),
    "absolute_path": (
        tar_with_absolute_path,
        "package entry '/tmp/sealbox-absolute-escape.txt' is an absolute path",
    ),
    "symlink_to_etc": (tar_with_symlink_to_etc, "package entry 'B/etc' is a symbolic link -> /etc"),
    "hardlink_outside": (
        tar_with_hardlink_outside,
        "package entry 'B/passwd' is a hard link -> ../../../../etc/passwd",
    ),
    "device_node": (tar_with_device_node, "package entry 'B/null' is a character device"),
    "duplicate_entry": (tar_with_duplicate_entry, "package entry 'B/bagit.txt' appears twice"),
    "entry_appended_after_end": (
        tar_with_entry_appended_after_end,
        "the package has data after the end of the tar archive",
    ),
}


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_malicious_tar_refused_nothing_written(tmp_path: Path, name: str) -> None:
    build, message = MALICIOUS[name]
    work = tmp_path / "work"
    work.mkdir()
    (work / "package.tar").write_bytes(build())
    before = _snapshot(tmp_path)
    target = work / "quarantine"
    with (work / "package.tar").open("rb") as fh, pytest.raises(PackageError) as err:
        safe_extract(fh, target)
    assert err.value.message == message
    assert _snapshot(tmp_path) == before, "something was written"
    assert not Path("/tmp/sealbox-absolute-escape.txt").exists()


def test_sparse_entry_claiming_10_gib_refused(tmp_path: Path) -> None:
    """A real GNU tar sparse archive: a 10 GiB file of holes stored in a few KiB."""
    tar_cmd = require_tool("tar")
    src = tmp_path / "src" / "B"
    src.mkdir(parents=True)
    (src / "bagit.txt").write_text("x")
    with (src / "huge.img").open("wb") as fh:
        fh.truncate(10 << 30)
    package = tmp_path / "sparse.tar"
    subprocess.run(
        [tar_cmd, "--sparse", "--format=pax", "-cf", str(package), "-C", str(src.parent), "B"], check=True
    )
    assert package.stat().st_size < 1 << 20
    (src / "huge.img").unlink()
    before = _snapshot(tmp_path)
    with package.open("rb") as fh, pytest.raises(PackageError) as err:
        safe_extract(fh, tmp_path / "quarantine")
    assert err.value.message == f"package entry 'B/huge.img' is a sparse file claiming {10 << 30} bytes"
    assert _snapshot(tmp_path) == before


def test_entry_over_size_limit_refused(tmp_path: Path) -> None:
    data = _tar([_file("B/bagit.txt"), _file("B/big.bin", b"y" * 5000)])
    with pytest.raises(PackageError) as err:
        safe_extract(io.BytesIO(data), tmp_path / "q", Limits(max_entry_bytes=4096))
    assert err.value.message == "package entry 'B/big.bin' is 5000 bytes, over the limit of 4096"
    with pytest.raises(PackageError) as err:
        safe_extract(io.BytesIO(data), tmp_path / "q", Limits(max_total_bytes=4096))
    assert err.value.message == "the package holds more than 4096 bytes"
    assert not (tmp_path / "q").exists()


def tar_of_tiny_entries(count: int) -> bytes:
    """`count` empty files, built from raw ustar headers (tarfile.addfile is slow at this scale)."""
    template = tarfile.TarInfo("B/f000000")
    template.mtime = 0
    head = template.tobuf(format=tarfile.USTAR_FORMAT)
    name_at = head.index(b"B/f000000")
    out = bytearray()
    for n in range(count):
        block = bytearray(head)
        block[name_at : name_at + 9] = f"B/f{n:06d}".encode()
        block[148:156] = b"        "
        block[148:155] = f"{sum(block):06o}\0".encode()
        out += block
    out += b"\0" * 1024
    return bytes(out)


def test_one_entry_more_than_the_limit_is_refused_and_the_limit_itself_extracts(tmp_path: Path) -> None:
    # The same check as the default 50,000 (`receive --max-entries`), at a size that takes
    # milliseconds: parsing 50,001 headers took seconds and proved nothing more.
    limits = Limits(max_entries=1000)
    data = tar_of_tiny_entries(1001)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:  # the fixture is a valid tar
        assert len(tar.getmembers()) == 1001
    (tmp_path / "p.tar").write_bytes(data)
    before = _snapshot(tmp_path)
    with (tmp_path / "p.tar").open("rb") as fh, pytest.raises(PackageError) as err:
        safe_extract(fh, tmp_path / "q", limits)
    assert err.value.message == "the package holds more than 1000 entries"
    assert _snapshot(tmp_path) == before
    names = safe_extract(io.BytesIO(tar_of_tiny_entries(1000)), tmp_path / "r", limits)
    assert len(names) == 1000 and len(list((tmp_path / "r/B").iterdir())) == 1000


def test_the_default_entry_limit_is_50000() -> None:
    assert Limits().max_entries == 50_000


def test_well_formed_tar_extracts_only_files_and_dirs(tmp_path: Path) -> None:
    data = _tar([_file("B/bagit.txt", b"hello"), _file("B/data/a", b"a"), _file("VERIFY.txt", b"v")])
    names = safe_extract(io.BytesIO(data), tmp_path / "q")
    assert names == ["B/bagit.txt", "B/data/a", "VERIFY.txt"]
    assert (tmp_path / "q/B/bagit.txt").read_bytes() == b"hello"
