"""Builders for test inputs: evidence trees with awkward names, keys, sealed bundles."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from tests.support.env import Cli

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
    """atime, mtime, ctime of every entry (not following links), keyed by path bytes. Directories
    are listed with O_NOATIME, so taking the snapshot does not itself move the atimes it records."""
    out = {}
    stack = [os.fsencode(tree)]
    while stack:
        path = stack.pop()
        st = os.lstat(path)
        out[path] = (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns)
        if not stat.S_ISDIR(st.st_mode):
            continue
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOATIME)
        try:
            names = [os.fsencode(e.name) for e in os.scandir(fd)]
        finally:
            os.close(fd)
        stack.extend(path + b"/" + name for name in names)
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


@contextmanager
def sealed_bundle(
    base: Path, files: Mapping[str, str], custody: tuple[tuple[str, ...], ...] = ()
) -> Iterator[tuple[Cli, Path]]:
    """(cli, bundle): a real key under `base`, `files` (relative path: text) collected by the CLI,
    then one `custody add` per entry of `custody`; the bundle's flags are cleared on exit (for
    module fixtures that many tests copy)."""
    from tests.support.env import Cli, clear_flags

    cli = Cli(base / "home")
    make_key(cli)
    src = base / "src"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    out = base / "out"
    out.mkdir()
    bundle = collect(cli, out, src)
    for args in custody:
        cli("custody", "add", bundle, *args, check=True)
    try:
        yield cli, bundle
    finally:
        clear_flags(out)


def writable_copy(bundle: Path, dest_parent: Path) -> Path:
    """A tamperable copy of a sealed bundle (copies carry no immutable flags)."""
    dest = dest_parent / bundle.name
    shutil.copytree(bundle, dest, symlinks=True)
    subprocess.run(["chmod", "-R", "u+w", str(dest)], check=True)
    return dest


def run_on_exfat(tmp_path: Path, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run shell `script` with a fresh exFAT filesystem (as most USB sticks are: no case, no
    permissions) mounted at $STICK: real exFAT through FUSE on a loop device, in a mount namespace
    of the child's own, so the machine's mounts stay as they are. Needs root."""
    from tests.support.env import require, require_root, require_tool

    require_root()
    mkfs, mount = require_tool("mkfs.exfat"), require_tool("mount.exfat-fuse")
    require(Path("/dev/fuse").exists(), "no /dev/fuse")
    image = tmp_path / "stick.img"
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    subprocess.run([mkfs, str(image)], check=True, capture_output=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], check=True, capture_output=True, text=True)
    device = loop.stdout.strip()
    stick = tmp_path / "stick"
    stick.mkdir()
    wrapped = "\n".join(
        [
            f'{mount} {device} "$STICK" >/dev/null || exit 99',
            script,
            "status=$?",
            "cd /",
            'umount "$STICK"',
            "exit $status",
        ]
    )
    try:
        return subprocess.run(
            ["unshare", "-m", "sh", "-c", wrapped],
            env={**env, "STICK": str(stick)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


def assert_write_once(bundle: Path) -> None:
    """Every directory of a sealed bundle is 0555 and every file 0444 (continuation.jsonl: 0644,
    empty, for the custody events that follow the seal)."""
    for path in [bundle, *bundle.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir():
            assert mode == 0o555, path
        elif path.name == "continuation.jsonl":
            assert mode == 0o644 and path.stat().st_size == 0
        else:
            assert mode == 0o444, path
