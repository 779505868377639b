"""Writing one bundle: write-once files in `<name>.incomplete/`, then seal and rename."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import shlex
import socket
import sys
import time
import uuid
from typing import IO, TYPE_CHECKING, Any

from manifest import TOOL_NAME, __version__
from manifest.acquisition_log import open_log
from manifest.errors import BundleError, UsageError
from manifest.format import bagit
from manifest.format.bagit import CONTINUATION, INCOMPLETE
from manifest.format.items import empty_item, item_line
from manifest.format.pathenc import PAYLOAD_FILE_DIRS
from manifest.format.timefmt import compact_utc, now_ns, parse_rfc3339_ns, rfc3339_ns
from manifest.hashing import sha256_file, sha256_files
from manifest.osio.crashpoint import crash_point
from manifest.osio.flags import FS_APPEND_FL, FS_IMMUTABLE_FL, add_flags
from manifest.osio.libc import libc as c_library
from manifest.previous import PREVIOUS_FIELD
from manifest.signing.custody import CUSTODY, GENESIS, CustodyWriter, sha256_hex
from manifest.views import ViewContext, ViewSet

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from manifest.osio.spool import Spool
    from manifest.signing.keys import Signer

CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# What the seal writes after its `sealed` event (`_write_seal`), covered by no custody line: a run
# stopped there is finished by a resume, which removes these and writes them again.
AFTER_SEALED = (
    CONTINUATION,
    "keys/signer.pub.pem",
    "keys/signer.minisign.pub",
    "bagit.txt",
    "bag-info.txt",
    bagit.TAGMANIFEST,
    bagit.SIG,
    bagit.MINISIG,
    bagit.TSR,
)


def check_case_id(case: str) -> str:
    if not CASE_ID.match(case):
        raise UsageError(
            f"case id '{case}' is not usable in a file name",
            "use letters, digits, '.', '_' or '-', e.g. OKC-2026-0042",
        )
    return case


def safe_host(host: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", host)[:63] or "host"


def _write_once(path: Path, data: bytes, mode: int = 0o444) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _immutable_default() -> bool:
    """The immutable flag is set where it can be: as root on Linux."""
    return os.geteuid() == 0 and sys.platform.startswith("linux")


def _open_at_end(path: Path) -> int:
    """For appending without O_APPEND, which copy_file_range(2) refuses as a target."""
    fd = os.open(path, os.O_WRONLY)
    os.lseek(fd, 0, os.SEEK_END)
    return fd


def lock_bundle_dir(path: Path) -> int:
    """Hold an exclusive lock on the bundle directory while writing it: a resume must never
    work on a bundle that a running collection is still writing. Released when the process ends."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            return fd  # a filesystem without locks (some network shares): write-once files still guard it
        os.close(fd)
        raise UsageError(
            f"{path} is being written by another sealbox process",
            "wait for it to finish or stop it first",
        ) from None
    return fd


def _syncfs(path: Path) -> None:
    """One durability barrier for everything written to the bundle's filesystem."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if c_library().syncfs(fd) != 0:
            os.sync()
    except (OSError, AttributeError):
        os.sync()
    finally:
        os.close(fd)


def ignores_case(path: Path) -> bool:
    """Whether the filesystem holding directory `path` ignores case in names, as exFAT and FAT
    (most USB sticks) do: its own name with the case swapped reaches it too."""
    swapped = path.name.swapcase()
    if swapped == path.name:
        return False
    try:
        # Not by inode: exFAT through FUSE numbers each spelling of a name apart.
        return path.with_name(swapped).is_dir() and swapped not in {p.name for p in path.parent.iterdir()}
    except OSError:
        return False


def _lock_deepest_first(dirs: list[bytes]) -> None:
    """chmod 0555 each of `dirs` (deepest first) through its parent's fd, reached from the
    directory just done by `..` where that is its parent: a deep chain costs two calls a level,
    not a walk of the whole path for each."""
    here: bytes | None = None
    here_fd = -1
    try:
        for path in dirs:
            parent, _, name = path.rpartition(b"/")
            if here == path:
                up = os.open(b"..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=here_fd)
            else:
                up = os.open(parent or b"/", os.O_RDONLY | os.O_DIRECTORY)
            if here_fd >= 0:
                os.close(here_fd)
            here, here_fd = parent, up
            os.chmod(name, 0o555, dir_fd=here_fd)  # these are directories sealbox made: no links
    finally:
        if here_fd >= 0:
            os.close(here_fd)


class Stage(enum.Enum):
    """How far a bundle had got when its writer was made."""

    NEW = "new"  # nothing written yet: every file is created
    COLLECTING = "collecting"  # resumed before its seal: items.jsonl grows, manifest and views are rewritten
    SEALED = "sealed"  # resumed after its `sealed` event: only the seal's own files are left to write


@dataclasses.dataclass(frozen=True)
class WriterState:
    """Everything a `BundleWriter` starts from, built once from a fresh start (`fresh`) or from
    the custody log of an interrupted run (`resumed`). A new attribute of the bundle is added
    here and read by the one constructor, so the two paths cannot drift apart."""

    path: Path  # the `.incomplete` directory, made or checked
    lock: int  # the fd holding its lock (`lock_bundle_dir`)
    stage: Stage
    case: str
    bundle_id: str
    host: str
    started_ns: int
    signer: Signer
    organization: str
    contact: str
    root: Path | None
    immutable: bool
    previous: str | None  # SHA-256 of the tagmanifest of the bundle this one follows up
    custody_seq: int = 0  # the custody chain's head: its last line's seq ...
    custody_prev: str = GENESIS  # ... and that line's SHA-256

    @property
    def name(self) -> str:
        return self.path.name[: -len(INCOMPLETE)]

    @classmethod
    def fresh(
        cls,
        out_dir: Path,
        *,
        case: str,
        signer: Signer,
        host: str | None = None,
        organization: str = "",
        contact: str = "",
        root: Path | None = None,
        immutable: bool | None = None,
        previous: str | None = None,
    ) -> WriterState:
        """A new bundle under `out_dir`: its `.incomplete` directory is made and locked."""
        host = host or socket.gethostname()
        if not out_dir.is_dir():
            raise UsageError(
                f"output directory {out_dir} does not exist", "create it or choose another --out"
            )
        started, name = _claim_name(out_dir, f"{check_case_id(case)}_{safe_host(host)}_")
        path = out_dir / (name + INCOMPLETE)
        for sub in ("data/files", "data/volatile", "metadata", "custody", "keys"):
            (path / sub).mkdir(parents=True)
        return cls(
            path=path,
            lock=lock_bundle_dir(path),
            stage=Stage.NEW,
            case=case,
            bundle_id=str(uuid.uuid4()),
            host=host,
            started_ns=started,
            signer=signer,
            organization=organization or signer.identity.organization,
            contact=contact or signer.identity.name,
            root=root,
            immutable=_immutable_default() if immutable is None else immutable,
            previous=previous,
        )

    @classmethod
    def resumed(
        cls,
        path: Path,
        events: list[dict[str, Any]],
        last_line: bytes,
        *,
        lock: int,
        signer: Signer,
        organization: str = "",
        contact: str = "",
        root: Path | None = None,
        immutable: bool | None = None,
    ) -> WriterState:
        """An interrupted `.incomplete` bundle, from its custody events as manifest/resume.py
        checked them (`events[0]` is `collection-started`, `last_line` the chain's last line).
        Refused when its sealed name already exists."""
        started = events[0]
        details = started.get("details") or {}
        final = path.parent / path.name[: -len(INCOMPLETE)]
        if final.exists():
            raise UsageError(f"{final} already exists", "that bundle was sealed; nothing to resume")
        return cls(
            path=path,
            lock=lock,
            stage=Stage.SEALED if events[-1].get("event") == "sealed" else Stage.COLLECTING,
            case=check_case_id(str(started.get("case"))),
            bundle_id=str(started.get("bundle")),
            host=str(details.get("host") or started.get("host") or ""),
            started_ns=parse_rfc3339_ns(str(started.get("time"))),
            signer=signer,
            organization=organization or signer.identity.organization,
            contact=contact or signer.identity.name,
            root=root,
            immutable=_immutable_default() if immutable is None else immutable,
            previous=(details.get("previous") or {}).get("tagmanifest_sha256"),
            custody_seq=int(events[-1]["seq"]),
            custody_prev=sha256_hex(last_line),
        )


def _claim_name(out_dir: Path, prefix: str) -> tuple[int, str]:
    """(start time, name) of a new bundle, its `.incomplete` directory made. Names have
    one-second resolution (FORMAT.md §1): when this second's is taken (a run a moment ago, or one
    beside this one), the next second's is used. Nothing that exists is ever reused."""
    for _ in range(3):
        started = now_ns()
        name = prefix + compact_utc(started)
        if not (out_dir / name).exists():
            path = out_dir / (name + INCOMPLETE)
            try:
                path.mkdir()
                return started, name
            except FileExistsError:
                pass
            except OSError as exc:
                raise BundleError(f"cannot create {path}: {exc.strerror}") from exc
        time.sleep(1 - (started % 1_000_000_000) / 1e9)  # until the next second
    raise UsageError(f"{out_dir / name} already exists", "never overwrite evidence: choose another --out")


@dataclasses.dataclass
class _Streams:
    """What a writer appends to while items are still being recorded (not after the `sealed`
    event): items.jsonl, the payload manifest, the custody log and the views."""

    items: IO[bytes]
    manifest: IO[bytes]
    custody: CustodyWriter
    views: ViewSet


class BundleWriter:
    """Builds one bundle. Every file is created with O_EXCL and read-only; nothing is rewritten.

    One constructor, from a `WriterState`: `BundleWriter(WriterState.fresh(out_dir, ...))` for a
    new bundle; manifest/resume.py builds it from `WriterState.resumed(...)`."""

    def __init__(self, state: WriterState) -> None:
        self.state = state
        self.case = state.case
        self.bundle_id = state.bundle_id
        self.host = state.host
        self.started_ns = state.started_ns
        self.name = state.name
        self.signer = state.signer
        self.organization = state.organization
        self.contact = state.contact
        self.root = state.root
        self.immutable = state.immutable
        self.previous = state.previous
        self.path = state.path
        self.final_path = state.path.parent / state.name
        self._lock = state.lock
        self._ids = 0
        self.payload_files = 0
        self.payload_bytes = 0
        # Every directory made under data/ (reported by the acquisition), so sealing need not
        # walk the payload to lock them; None for a resumed bundle, whose first run made some.
        self.payload_dirs: set[bytes] | None = set() if state.stage is Stage.NEW else None
        self.sealed = False
        self.timestamp_error: str | None = None
        self._log_file = self._open_log_file(state.stage)
        self.log = open_log(
            io.TextIOWrapper(self._log_file, encoding="utf-8", write_through=True),
            bundle=self.bundle_id,
            case=self.case,
        )
        self.view_context = ViewContext(
            case=state.case,
            bundle_id=state.bundle_id,
            host=state.host,
            performer=state.signer.identity,
            started=rfc3339_ns(state.started_ns),
            command_line=shlex.join(sys.argv),
        )
        self._streams = None if state.stage is Stage.SEALED else self._open_streams(state)

    def _open_log_file(self, stage: Stage) -> IO[bytes]:
        """metadata/acquisition-log.jsonl: new, or the interrupted run's, appended to."""
        log = self.path / "metadata/acquisition-log.jsonl"
        if stage is Stage.NEW:
            return self._open("metadata/acquisition-log.jsonl")
        with contextlib.suppress(FileNotFoundError):
            log.chmod(0o644)  # read-only already if the run had finished collecting
        flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT if stage is Stage.COLLECTING else 0)
        return os.fdopen(os.open(log, flags, 0o644), "ab", 1 << 20)

    def _open_streams(self, state: WriterState) -> _Streams:
        custody_path = self.path / CUSTODY
        if state.stage is Stage.NEW:
            items = self._open("metadata/items.jsonl")
            custody = CustodyWriter(custody_path, case=self.case, bundle=self.bundle_id, signer=self.signer)
        else:
            # manifest/resume.py has cut items.jsonl back to its last whole line and removed the
            # copies no item records; everything else in metadata/ (the views, an email index,
            # incident.json) is derived from items.jsonl or the command and is written again, as
            # is the payload manifest (`adopt_items`).
            self.items_path.chmod(0o644)  # read-only already if the run had finished collecting
            items = os.fdopen(_open_at_end(self.items_path), "wb", 1 << 20)
            keep = {"items.jsonl", "acquisition-log.jsonl"}
            derived = [f"metadata/{p.name}" for p in (self.path / "metadata").iterdir() if p.name not in keep]
            for rel in (bagit.MANIFEST, *derived):
                with contextlib.suppress(FileNotFoundError):
                    (self.path / rel).unlink()
            custody = CustodyWriter.reopen(
                custody_path,
                case=self.case,
                bundle=self.bundle_id,
                signer=self.signer,
                seq=state.custody_seq,
                prev=state.custody_prev,
            )
        views = ViewSet(self.view_context)
        streams = _Streams(items, self._open(bagit.MANIFEST), custody, views)
        views.open(self)
        return streams

    def _open_streams_or_fail(self) -> _Streams:
        if self._streams is None:
            raise BundleError(f"{self.path}: its sealed event is written; nothing more can be recorded")
        return self._streams

    @property
    def custody(self) -> CustodyWriter:
        """The custody log of this run (custody/custody.jsonl)."""
        return self._open_streams_or_fail().custody

    @property
    def views(self) -> ViewSet:
        """The views being written (metadata/bodyfile.txt, dfxml.xml, case.jsonld, ...)."""
        return self._open_streams_or_fail().views

    def finish_seal(self, oxum: str, manifest_hash: str, *, tsa_url: str | None = None) -> Path:
        """Write the tag files, sign, lock down and rename a bundle resumed after its `sealed`
        event (`Stage.SEALED`): `oxum` and `manifest_hash` are that event's."""
        self.log.info("seal-resumed", manifest_sha256=manifest_hash, payload_oxum=oxum)
        return self._write_seal(oxum, manifest_hash, tsa_url)

    def adopt_items(self, items: list[dict[str, Any]]) -> None:
        """Items an interrupted run already recorded (already in items.jsonl): their manifest
        lines and view fragments are written again, and ids continue after them."""
        for start in range(0, len(items), 256):
            chunk = items[start : start + 256]
            manifest = b"".join(
                bagit.manifest_line(it["sha256"], it["stored_as"]) for it in chunk if it.get("stored_as")
            )
            streams = self._open_streams_or_fail()
            streams.manifest.write(manifest)
            streams.views.append(streams.views.render(chunk))
        for it in items:
            if it.get("stored_as"):
                self.payload_files += 1
                self.payload_bytes += it.get("size") or 0
            self._ids = max(self._ids, int(it["id"]))

    # -- write-once files ----------------------------------------------------------
    def _open(self, rel: str) -> IO[bytes]:
        fd = os.open(self.path / rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        return os.fdopen(fd, "wb", buffering=1 << 20)

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def append_items(self, lines: bytes, manifest_lines: bytes, files: int, nbytes: int) -> None:
        """Items in id order, with the manifest lines of those that have a payload copy."""
        streams = self._open_streams_or_fail()
        streams.items.write(lines)
        streams.manifest.write(manifest_lines)
        self.payload_files += files
        self.payload_bytes += nbytes

    def append_items_from(
        self, spool: Spool, lines: tuple[int, int], manifest_lines: tuple[int, int], files: int, nbytes: int
    ) -> None:
        """`append_items`, for lines a worker put in the spool: copied in the kernel."""
        streams = self._open_streams_or_fail()
        for out, (offset, length) in ((streams.items, lines), (streams.manifest, manifest_lines)):
            if length:
                out.flush()
                spool.copy(offset, length, out.fileno())
        self.payload_files += files
        self.payload_bytes += nbytes

    def add_volatile(self, name: str, data: Any) -> dict[str, Any]:
        """A volatile snapshot as `data/volatile/<name>.json` and its own item."""
        if not re.match(r"^[a-z0-9][a-z0-9_-]*$", name):
            raise BundleError(f"volatile section name '{name}' is not a simple name")
        start = now_ns()
        body = (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()
        rel = f"data/volatile/{name}.json"
        _write_once(self.path / rel, body)
        if self.immutable:  # like every payload copy (SPEC §8 amendment 4): it cannot be taken again
            self._make_immutable(rel)
        digest = hashlib.sha256(body).hexdigest()
        item = empty_item()
        item.update(
            id=f"{self.next_id():08d}",
            kind="volatile",
            collector=f"volatile/{name}",
            source_path=f"volatile:{name}",
            stored_as=rel,
            size=len(body),
            sha256=digest,
            status="ok",
            acquired_start=rfc3339_ns(start),
            acquired_end=rfc3339_ns(now_ns()),
        )
        self.append_items(item_line(item), bagit.manifest_line(digest, rel), 1, len(body))
        return item

    def _make_immutable(self, rel: str) -> None:
        fd = os.open(self.path / rel, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            why = add_flags(fd, FS_IMMUTABLE_FL)
        finally:
            os.close(fd)
        if why:
            self.log.warning("immutable-flag-unavailable", path=rel, detail=why)

    @contextlib.contextmanager
    def open_metadata(self, name: str) -> Iterator[IO[bytes]]:
        """A new `metadata/<name>` to stream into; read-only once closed."""
        path = self.path / "metadata" / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            yield f
        path.chmod(0o444)

    def write_metadata(self, name: str, data: bytes) -> Path:
        path = self.path / "metadata" / name
        _write_once(path, data)
        return path

    @property
    def items_path(self) -> Path:
        return self.path / "metadata" / "items.jsonl"

    def flush_items(self) -> None:
        """Everything appended so far is in metadata/items.jsonl (for a pass over it)."""
        self._open_streams_or_fail().items.flush()

    def finish_items(self) -> Path:
        """Close items.jsonl and the payload manifest: nothing more is acquired after this."""
        streams = self._open_streams_or_fail()
        for f, rel in ((streams.items, "metadata/items.jsonl"), (streams.manifest, bagit.MANIFEST)):
            if not f.closed:
                f.close()
                (self.path / rel).chmod(0o444)
        return self.items_path

    # -- sealing ------------------------------------------------------------------
    def append_views(self, blobs: list[bytes]) -> None:
        """View fragments rendered for the items just appended, in the same order."""
        self.views.append(blobs)

    def seal(self, counts: dict[str, Any], *, tsa_url: str | None = None) -> Path:
        """Write the tag files, sign, lock down, and rename: the last step makes it sealed."""
        self.finish_items()
        self.views.close()
        manifest_hash = sha256_file(self.path / bagit.MANIFEST)
        oxum = f"{self.payload_bytes}.{self.payload_files}"
        self.custody.add(
            "sealed",
            {
                "manifest_sha256": manifest_hash,
                "payload_oxum": oxum,
                "counts": counts,
                "bundle_name": self.name,
            },
        )
        self.custody.close()
        crash_point("seal-after-sealed-event")
        return self._write_seal(oxum, manifest_hash, tsa_url)

    def _write_seal(self, oxum: str, manifest_hash: str, tsa_url: str | None) -> Path:
        """Everything after the `sealed` event: derived from what that event covers, so a run
        killed here is finished by `--resume` (SPEC §1)."""
        (self.path / CUSTODY).chmod(0o444)
        _write_once(self.path / CONTINUATION, b"", 0o644)
        _write_once(self.path / "keys/signer.pub.pem", self._public_pem())
        _write_once(self.path / "keys/signer.minisign.pub", self._minisign_pub())
        _write_once(self.path / "bagit.txt", bagit.BAGIT_TXT)
        _write_once(self.path / "bag-info.txt", bagit.bag_info_text(self._bag_info(oxum)))
        self.log.info("sealing", manifest_sha256=manifest_hash, payload_oxum=oxum, immutable=self.immutable)
        self._log_file.close()
        (self.path / "metadata/acquisition-log.jsonl").chmod(0o444)
        _syncfs(self.path)
        tags = bagit.tag_files(self.path)
        digests = sha256_files([self.path / rel for rel in tags])
        tagmanifest = b"".join(bagit.manifest_line(d, rel) for d, rel in zip(digests, tags, strict=True))
        _write_once(self.path / bagit.TAGMANIFEST, tagmanifest)
        _write_once(self.path / bagit.SIG, self.signer.sign(tagmanifest))
        comment = f"sealbox bundle {self.bundle_id} case {self.case}"
        _write_once(self.path / bagit.MINISIG, self.signer.minisign(tagmanifest, comment).encode())
        if tsa_url:
            self._timestamp(tsa_url, tagmanifest)
        self._lock_down()
        crash_point("seal-before-rename")
        self.path.rename(self.final_path)
        dir_fd = os.open(self.final_path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self.sealed = True
        os.close(self._lock)
        return self.final_path

    def _timestamp(self, url: str, tagmanifest: bytes) -> None:
        """Best effort: a TSA that does not answer must not cost the evidence its seal."""
        from manifest.signing.timestamp import request_timestamp

        try:
            _write_once(self.path / bagit.TSR, request_timestamp(url, tagmanifest))
        except BundleError as exc:
            self.timestamp_error = exc.message

    def _public_pem(self) -> bytes:
        from manifest.signing.keys import public_pem

        return public_pem(self.signer.public)

    def _minisign_pub(self) -> bytes:
        from manifest.signing.minisign import public_key_file

        return public_key_file(self.signer.public.public_bytes_raw()).encode()

    def _bag_info(self, oxum: str) -> list[tuple[str, str]]:
        fields = [
            ("Source-Organization", self.organization or "unknown"),
            ("Contact-Name", self.contact or "unknown"),
            ("External-Identifier", self.case),
            ("Bagging-Date", rfc3339_ns(self.started_ns)[:10]),
            ("Payload-Oxum", oxum),
            ("Bag-Software-Agent", f"{TOOL_NAME} {__version__}"),
            ("Sealbox-Format", "1"),
            ("Sealbox-Bundle-Id", self.bundle_id),
            ("Sealbox-Host", self.host),
            ("Sealbox-Signer-Fingerprint", self.signer.fingerprint),
        ]
        if self.root is not None:
            fields.append(("Sealbox-Root", str(self.root)))
        if self.previous is not None:
            fields.append((PREVIOUS_FIELD, self.previous))
        return fields

    def _lock_down(self) -> None:
        """Directories read-only; on Linux as root the immutable / append-only inode flags."""
        problems: set[str] = set()
        if self.immutable:
            locked = [*bagit.tag_files(self.path), bagit.TAGMANIFEST, bagit.SIG, bagit.MINISIG]
            for rel in locked + ([bagit.TSR] if (self.path / bagit.TSR).exists() else []):
                fd = os.open(self.path / rel, os.O_RDONLY)
                try:
                    why = add_flags(fd, FS_IMMUTABLE_FL)
                finally:
                    os.close(fd)
                if why:
                    problems.add(why)
                    break
            fd = os.open(self.path / CONTINUATION, os.O_RDONLY)
            try:
                add_flags(fd, FS_APPEND_FL)
            finally:
                os.close(fd)
        for d in ("data/volatile", "metadata", "custody", "keys"):
            (self.path / d).chmod(0o555)
        _lock_deepest_first(self._dirs_to_lock())
        for top in (self.path / "data", self.path):
            top.chmod(0o555)

    def note_payload_dirs(self, made: list[bytes]) -> None:
        """Directories the acquisition made under data/ (their parents count as made too)."""
        if self.payload_dirs is not None:
            self.payload_dirs.update(made)

    def _dirs_to_lock(self) -> list[bytes]:
        """Every directory under data/files and data/long, deepest first, those two included."""
        tops = [self.path / top for top in PAYLOAD_FILE_DIRS if (self.path / top).is_dir()]
        if self.payload_dirs is None:
            found: list[bytes] = []
            for top in tops:
                for root, subdirs, _files in os.walk(os.fsencode(top), topdown=False):
                    found.extend(root + b"/" + d for d in subdirs)
            return found + [os.fsencode(top) for top in tops]
        data = os.fsencode(self.path / "data") + b"/"
        every: set[bytes] = set()
        for made in self.payload_dirs:
            while made.startswith(data) and made not in every:
                every.add(made)
                made = made.rpartition(b"/")[0]
        every.update(os.fsencode(top) for top in tops)
        return sorted(every, key=len, reverse=True)

    def abort(self, reason: str) -> None:
        """Leave the unsealed `.incomplete` directory as it is, with the reason logged."""
        with contextlib.suppress(Exception):
            self.log.error("collection-aborted", reason=reason)
        streams = self._streams
        if streams is not None:
            for f in (streams.items, streams.manifest):
                with contextlib.suppress(Exception):
                    f.close()
            with contextlib.suppress(Exception):
                streams.views.close()
            with contextlib.suppress(Exception):
                streams.custody.close()
        with contextlib.suppress(Exception):
            self._log_file.close()
        with contextlib.suppress(Exception):
            os.close(self._lock)
