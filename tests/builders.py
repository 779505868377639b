"""Builders for test inputs: evidence trees with awkward names, keys, sealed bundles."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.conftest import Cli

FP = re.compile(r"SHA256:[0-9a-f]{64}")


def build_awkward_tree(root: Path, big_mib: int = 50) -> Path:
    """A tree with every kind of entry and name the format must survive."""
    src = root / "evidence"
    (src / "nested/deeper/deepest").mkdir(parents=True)
    (src / "nested/deeper/deepest/note.txt").write_text("deep note\n")
    (src / "empty.txt").write_bytes(b"")
    ro = src / "readonly.log"
    ro.write_text("read only\n")
    ro.chmod(0o444)
    (src / "name with spaces.txt").write_text("spaces\n")
    (src / "100% sure=yes.txt").write_text("percent and equals\n")
    (src / "line\nbreak.txt").write_text("newline in name\n")
    (src / "win<illegal>:chars?.txt").write_text("windows-illegal\n")
    os.mkdir(os.fsencode(src) + b"/latin1-\xe9t\xe9")
    with open(os.fsencode(src) + b"/latin1-\xe9t\xe9/caf\xe9.txt", "wb") as f:
        f.write(b"not utf-8 name\n")
    (src / "inside-link").symlink_to("nested/deeper/deepest/note.txt")
    (src / "outside-link").symlink_to("/etc/passwd")
    (src / "dangling-link").symlink_to("/nonexistent/target")
    os.mkfifo(src / "a-fifo")
    os.link(src / "readonly.log", src / "hardlink-to-readonly.log")
    with open(src / "big.bin", "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(big_mib):
            f.write(block)
    return src


def snapshot_times(tree: Path) -> dict[bytes, tuple[int, int, int]]:
    """atime, mtime, ctime of every entry (not following links), keyed by path bytes."""
    out = {}
    top = os.fsencode(tree)
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames, b""]:
            p = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(p)
            out[p] = (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns)
    return out


def make_key(
    cli: Cli,
    name: str = "Ann Example",
    role: str = "IT responder",
    org: str = "City IT",
    passphrase_file: Path | None = None,
) -> str:
    args = ["keys", "generate", "--name", name, "--role", role, "--org", org]
    if passphrase_file:
        args += ["--passphrase-file", str(passphrase_file)]
    proc = cli(*args, check=True)
    match = FP.search(proc.stdout)
    assert match, proc.stdout
    return match.group(0)


def collect(
    cli: Cli, out: Path, *paths: Path | str, case: str = "OKC-2026-0042", extra: tuple[str, ...] = ()
) -> Path:
    proc = cli("collect", "--case", case, "--out", out, *extra, *paths, check=True)
    bundle = Path(proc.stdout.strip().splitlines()[-1])
    assert bundle.is_dir(), proc.stdout
    return bundle


def writable_copy(bundle: Path, dest_parent: Path) -> Path:
    """A tamperable copy of a sealed bundle (copies carry no immutable flags)."""
    dest = dest_parent / bundle.name
    shutil.copytree(bundle, dest, symlinks=True)
    subprocess.run(["chmod", "-R", "u+w", str(dest)], check=True)
    return dest
