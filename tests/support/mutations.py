"""Mutations of a sealed bundle and the oracle that judges verify's answer to each.

Shared by tests/cli/test_mutation.py (a fast profile in CI) and scripts/fuzz-verify (long runs).
The oracle: if any byte something covers or any file type inside the bundle differs from before
(an empty directory holds no byte; minisign signs neither the untrusted comment nor line ends),
verify must not say ok, and when nothing differs it must say ok (no false alarm); it must never
raise anything but a SealboxError, and it must end within a time bound.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manifest.errors import SealboxError
from manifest.verify import verify_bundle

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from manifest.signing.keys import KeyStore

from tests.support.env import REPO

SPARSE_SIZE = 200 << 30  # as in the issue: a file made 200 GB by `truncate`
TIME_BOUND = 60.0  # seconds for one verify of the small test bundle, whatever was done to it


# -- the mutations --------------------------------------------------------------------------------
# Each takes (bundle, rel, rng, outside) and changes bundle/rel, returning a short description,
# or None when it does not apply to that entry (a byte flip on a directory, say).


def _file(path: Path) -> bool:
    """A regular file small enough to rewrite in memory (not one an earlier step made huge)."""
    return path.is_file() and not path.is_symlink() and path.stat().st_size <= 64 << 20


def _rewrite(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


def flip(bundle: Path, rel: str, rng: random.Random, outside: Path) -> str | None:
    path = bundle / rel
    if not _file(path) or path.stat().st_size == 0:
        return None
    data = bytearray(path.read_bytes())
    at = rng.randrange(len(data))
    data[at] ^= 1 << rng.randrange(8)
    _rewrite(path, bytes(data))
    return f"flip a bit at byte {at}"


def truncate(bundle: Path, rel: str, rng: random.Random, outside: Path) -> str | None:
    path = bundle / rel
    if not _file(path) or path.stat().st_size == 0:
        return None
    size = rng.randrange(path.stat().st_size)
    path.chmod(0o644)
    os.truncate(path, size)
    return f"truncate to {size} bytes"


def extend(bundle: Path, rel: str, rng: random.Random, outside: Path) -> str | None:
    path = bundle / rel
    if not _file(path):
        return None
    extra = rng.choice([b"\n", b" ", b"x", rng.randbytes(rng.randrange(1, 64))])
    _rewrite(path, path.read_bytes() + extra)
    return f"append {len(extra)} bytes"


def insert(bundle: Path, rel: str, rng: random.Random, outside: Path) -> str | None:
    path = bundle / rel
    if not _file(path):
        return None
    data = path.read_bytes()
    at = rng.randrange(len(data) + 1)
    extra = rng.choice([b"\n", b"{", b"\x00", rng.randbytes(rng.randrange(1, 16))])
    _rewrite(path, data[:at] + extra + data[at:])
    return f"insert {len(extra)} bytes at {at}"


def delete(bundle: Path, rel: str, rng: random.Random, outside: Path) -> str | None:
    path = bundle / rel
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    return "delete"


def crlf(bundle: Path, rel: str, rng: random.Random, outside: Path) -> str | None:
    path = bundle / rel
    if not _file(path):
        return None
    data = path.read_bytes()
    _rewrite(path, data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return "CRLF line ends"


def symlink_to_copy(bundle: Path, rel: str, rng: random.Random, outside: Path) -> str | None:
    """Replace with a symbolic link to an identical copy outside the bundle."""
    path = bundle / rel
    copy = outside / f"copy-{rng.randrange(1 << 30)}-{path.name}"
    if path.is_dir() and not path.is_symlink():
        inside = [p.lstat() for p in path.rglob("*")]
        if any(
            not (stat.S_ISREG(s.st_mode) or stat.S_ISDIR(s.st_mode) or stat.S_ISLNK(s.st_mode))
            or s.st_size > 64 << 20
            for s in inside
        ):
            return None  # a FIFO cannot be copied, a sparse giant would be copied in full
        shutil.copytree(path, copy, symlinks=True)
        shutil.rmtree(path)
    elif _file(path):
        shutil.copy2(path, copy)
        path.unlink()
    else:
        return None
    path.symlink_to(copy)
    return "symlink to an identical copy outside"


def to_directory(bundle: Path, rel: str, rng: random.Random, outside: Path) -> str | None:
    path = bundle / rel
    if not _file(path):
        return None
    path.unlink()
    path.mkdir()
    return "replace with a directory"


def to_fifo(bundle: Path, rel: str, rng: random.Random, outside: Path) -> str | None:
    path = bundle / rel
    delete(bundle, rel, rng, outside)
    os.mkfifo(path)
    return "replace with a FIFO"


def sparse_grow(bundle: Path, rel: str, rng: random.Random, outside: Path) -> str | None:
    path = bundle / rel
    if not _file(path):
        return None
    path.chmod(0o644)
    os.truncate(path, SPARSE_SIZE)
    return f"sparse-grow to {SPARSE_SIZE} bytes"


def drop_last_line(bundle: Path, rel: str, rng: random.Random, outside: Path) -> str | None:
    """Delete the last line of a JSON-lines file (for continuation.jsonl: the latest events)."""
    path = bundle / rel
    if not _file(path) or not rel.endswith(".jsonl"):
        return None
    lines = path.read_bytes().splitlines(keepends=True)
    if not lines:
        return None
    _rewrite(path, b"".join(lines[:-1]))
    return "delete the last line"


def add_file(bundle: Path, rel: str, rng: random.Random, outside: Path) -> str | None:
    path = bundle / rel
    if not path.is_dir() or path.is_symlink():
        return None
    name = rng.choice(["extra.txt", ".hidden", "x.jsonl", "tagmanifest-md5.txt"])
    (path / name).write_bytes(rng.randbytes(rng.randrange(0, 32)))
    return f"add file {name}"


MUTATIONS: dict[str, Callable[[Path, str, random.Random, Path], str | None]] = {
    "flip": flip,
    "truncate": truncate,
    "extend": extend,
    "insert": insert,
    "delete": delete,
    "crlf": crlf,
    "symlink": symlink_to_copy,
    "to-dir": to_directory,
    "fifo": to_fifo,
    "sparse-grow": sparse_grow,
    "drop-last-line": drop_last_line,
    "add-file": add_file,
}


def mutation_runs(max_examples: int) -> Any:
    """Hypothesis settings and arguments of a test over random runs of 1-3 mutations: `steps`
    (mutation name, where) and a `seed`; the test takes its sealed bundle from a fixture."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    def wrap(test: Any) -> Any:
        runs = given(
            steps=st.lists(
                st.tuples(st.sampled_from(sorted(MUTATIONS)), st.integers(0, 1000)), min_size=1, max_size=3
            ),
            seed=st.integers(0, 2**32 - 1),
        )(test)
        return settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )(runs)

    return wrap


# Mutation classes today's verify misses, each with the entries it misses them on and the branch
# that closes the gap (issue 13). The harness runs them separately (expected failures) so the
# suite stays green until those branches land; then they move out of this table.
_TAG_FILES = (
    "bag-info.txt",
    "bagit.txt",
    "manifest-sha256.txt",
    "tagmanifest-sha256.txt",
    "tagmanifest-sha256.txt.sig",
    "tagmanifest-sha256.txt.minisig",
    "custody/custody.jsonl",
    "custody/continuation.jsonl",
    "keys/*",
    "metadata/*",
)

# -- the oracle -----------------------------------------------------------------------------------


def snapshot(bundle: Path) -> dict[str, tuple[str, str]]:
    """Every entry under the bundle (not following links): its type and, for files, the SHA-256
    of its bytes. Two equal snapshots mean the mutation changed nothing verify could see."""
    out: dict[str, tuple[str, str]] = {}
    for root, dirs, files in os.walk(bundle):
        for name in dirs + files:
            full = Path(root) / name
            rel = full.relative_to(bundle).as_posix()
            st = full.lstat()
            if stat.S_ISREG(st.st_mode):
                if st.st_size > 1 << 30:  # a sparse giant: its size says enough
                    out[rel] = ("file", f"size {st.st_size}")
                else:
                    out[rel] = ("file", _covered_digest(rel, full.read_bytes()))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", "")
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(full))
            else:
                out[rel] = ("special", oct(stat.S_IFMT(st.st_mode)))
    return out


def _covered_digest(rel: str, data: bytes) -> str:
    """SHA-256 of the bytes something covers. All of a file, except the .minisig: minisign
    signs neither its first line (the "untrusted comment"), nor lines after the fourth, nor how
    lines end (LF or CRLF)."""
    if rel.endswith(".minisig"):
        lines = data.splitlines()
        if len(lines) >= 4:  # the first line is never read, whatever it holds
            data = b"\n".join(lines[1:4])
    return hashlib.sha256(data).hexdigest()


def changed(before: dict[str, tuple[str, str]], after: dict[str, tuple[str, str]]) -> bool:
    """Any difference but an empty directory coming or going (no byte is in one)."""

    def without_empty_dirs(snap: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
        parents = {rel.rsplit("/", 1)[0] for rel in snap if "/" in rel}
        return {rel: v for rel, v in snap.items() if v[0] != "dir" or rel in parents}

    return without_empty_dirs(before) != without_empty_dirs(after)


@dataclass
class Outcome:
    """What verify said about a mutated bundle."""

    ok: bool | None  # None when it raised or did not end
    detail: str = ""
    seconds: float = 0.0
    crashed: bool = False
    timed_out: bool = False
    kinds: list[str] = field(default_factory=list)


def custody_receipts(home: Path, original: Path) -> tuple[Path, ...]:
    """The signed receipts `custody add` kept of the original's log in the key store (there
    once receipts exist: issue 13 item 2). A mutated copy is verified against them as if handed
    over with them (`--receipt`): a receipt in the store binds only the copy it was made for."""
    bundle_id = ""
    for line in (original / "bag-info.txt").read_text(errors="replace").splitlines():
        if line.startswith("Sealbox-Bundle-Id:"):
            bundle_id = line.partition(":")[2].strip()
    directory = home / "receipts" / bundle_id
    return tuple(sorted(directory.glob("*.json"))) if bundle_id and directory.is_dir() else ()


def verify_in_process(bundle: Path, store: KeyStore, receipts: tuple[Path, ...] = ()) -> Outcome:
    """verify_bundle in this process: a SealboxError is a refusal (not ok), anything else a crash."""
    started = time.monotonic()
    extra: dict[str, Any] = {"receipts": receipts} if receipts else {}
    try:
        report = verify_bundle(bundle, store=store, workers=1, **extra)
    except SealboxError as exc:
        return Outcome(False, f"refused: {exc}", time.monotonic() - started)
    except Exception as exc:  # the harness looks for exactly this: a crash instead of a finding
        return Outcome(None, f"crashed: {exc!r}", time.monotonic() - started, crashed=True)
    seconds = time.monotonic() - started
    return Outcome(report.ok, "", seconds, kinds=sorted({f.kind for f in report.findings}))


def verify_cli(
    bundle: Path, home: Path, timeout: float = TIME_BOUND, receipts: tuple[Path, ...] = ()
) -> Outcome:
    """`sealbox verify` in a subprocess: exit 0 ok, 1 findings, 2 refusal; a traceback, an
    'internal error' or any other exit is a crash; no end within `timeout` is a hang."""
    env = {**os.environ, "SEALBOX_HOME": str(home), "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "agent",
                "verify",
                "--workers",
                "1",
                *(arg for receipt in receipts for arg in ("--receipt", str(receipt))),
                str(bundle),
            ],
            capture_output=True,
            text=True,
            errors="replace",
            env=env,
            timeout=timeout,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired:
        return Outcome(None, f"no end within {timeout:.0f} s", timeout, timed_out=True)
    seconds = time.monotonic() - started
    crashed = (
        "Traceback" in proc.stderr or "internal error" in proc.stderr or proc.returncode not in (0, 1, 2)
    )
    if crashed:
        return Outcome(None, f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}", seconds, crashed=True)
    kinds = sorted(
        {line.split()[1].rstrip(":") for line in proc.stdout.splitlines() if line.startswith("FAIL ")}
    )
    return Outcome(proc.returncode == 0, proc.stderr.strip()[-200:], seconds, kinds=kinds)


def violation(was_changed: bool, outcome: Outcome) -> str | None:
    """Why this outcome breaks the rule, or None when it keeps it."""
    if outcome.crashed:
        return f"crash instead of a finding ({outcome.detail})"
    if outcome.timed_out or outcome.seconds > TIME_BOUND:
        return f"no verdict in time ({outcome.detail or f'{outcome.seconds:.1f} s'})"
    if was_changed and outcome.ok:
        return "verified although covered bytes changed"
    if not was_changed and not outcome.ok:
        return f"a no-op mutation was reported: {outcome.kinds or outcome.detail}"
    return None


def entries(bundle: Path) -> list[str]:
    """Every file and directory of the bundle, sorted (the bundle itself excluded)."""
    return sorted(snapshot(bundle))


@dataclass
class Applied:
    mutation: str
    rel: str
    description: str


def mutate(bundle: Path, steps: list[tuple[str, int]], rng: random.Random, outside: Path) -> list[Applied]:
    """Apply (mutation, entry index) steps in turn, each to the entry at that index of the
    bundle as it is then; steps that do not apply are left out of the result."""
    applied = []
    for mutation, index in steps:
        names = entries(bundle)
        if not names:
            break
        rel = names[index % len(names)]
        if not os.path.lexists(bundle / rel):
            continue
        description = MUTATIONS[mutation](bundle, rel, rng, outside)
        if description is not None:
            applied.append(Applied(mutation, rel, description))
    return applied


def writable_copy(bundle: Path, dest: Path) -> Path:
    """A copy to mutate (copies carry no immutable or append-only flags)."""
    shutil.copytree(bundle, dest, symlinks=True)
    for root, dirs, files in os.walk(dest):
        for name in dirs + files:
            full = Path(root) / name
            if not full.is_symlink():
                full.chmod(0o755 if full.is_dir() else 0o644)
    return dest
