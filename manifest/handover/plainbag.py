"""Plain BagIt bags (RFC 8493 and the drafts 0.93-0.97 before it): integrity only.

A bag that is not a sealbox bundle carries no signature and no custody; what can be checked is
that it is complete and that every checksum in every manifest holds. This module checks exactly
that and reports every problem as a typed Finding, split into errors (the bag is not valid) and
warnings (valid, but worth a look: names that collide on other systems, non-canonical paths,
OS metadata files). It never follows a link, never opens a FIFO or device, reads no tag file
past its cap, and never hashes more payload bytes than the bag declares when Payload-Oxum
already shows data/ changed.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import re
import stat
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from manifest.findings import Finding

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
KNOWN_VERSIONS = ("0.93", "0.94", "0.95", "0.96", "0.97", "1.0")
# Caps, named in the finding when a bag exceeds them: tag files are metadata, never evidence.
MAX_DECLARATION = 4 << 10  # bagit.txt: two short lines
MAX_BAG_INFO = 16 << 20
MAX_TAG_FILE = 1 << 30  # any manifest, fetch.txt or other tag file
MAX_LINE = 64 << 10
MAX_ENTRIES = 20_000_000
# Files operating systems drop into folders by themselves: never evidence, often lost in copies.
OS_METADATA = frozenset(
    {
        ".DS_Store",
        "Thumbs.db",
        "ehthumbs.db",
        "desktop.ini",
        "Icon\r",
        ".Spotlight-V100",
        ".Trashes",
        ".fseventsd",
        ".TemporaryItems",
        "$RECYCLE.BIN",
    }
)
_BUF = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_MANIFEST_NAME = re.compile(r"(tag)?manifest-([A-Za-z0-9]+)\.txt")
_VERSION = re.compile(r"([0-9]+)\.([0-9]+)")
_OXUM = re.compile(r"([0-9]+)\.([0-9]+)")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_PERCENT = re.compile(r"%(0[AaDd]|25)")
_DRIVE = re.compile(r"[A-Za-z]:")
_DECLARATION_LINE = re.compile(r"([^:\s][^:]*?):[ \t](.*)")


@dataclass
class PlainBagReport:
    """Everything found: the bag is valid when there is no error; warnings never fail it."""

    bag: Path
    version: str | None = None
    encoding: str | None = None
    algorithms: list[str] = field(default_factory=list)
    payload_files: int = 0
    payload_bytes: int = 0
    info: dict[str, list[str]] = field(default_factory=dict)
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(
        self, kind: str, where: str, message: str, expected: str | None = None, found: str | None = None
    ) -> None:
        self.errors.append(Finding(kind, where, message, expected, found))

    def warn(
        self, kind: str, where: str, message: str, expected: str | None = None, found: str | None = None
    ) -> None:
        self.warnings.append(Finding(kind, where, message, expected, found))

    def as_dict(self) -> dict[str, Any]:
        return {
            "bag": str(self.bag),
            "kind": "bagit",
            "valid": self.ok,
            "signed": False,
            "custody": False,
            "bagit_version": self.version,
            "tag_file_encoding": self.encoding,
            "algorithms": self.algorithms,
            "payload_files": self.payload_files,
            "payload_bytes": self.payload_bytes,
            "errors": [f.as_dict() for f in self.errors],
            "warnings": [f.as_dict() for f in self.warnings],
        }


# Markers that only a sealbox bundle has: a directory with any of them is verified as a bundle
# (with every signature check), never downgraded to an unsigned plain bag.
_SEALBOX_MARKERS = (
    "tagmanifest-sha256.txt.sig",
    "tagmanifest-sha256.txt.minisig",
    "keys/signer.pub.pem",
    "custody",
    "metadata/items.jsonl",
)


def is_plain_bag(path: Path) -> bool:
    """A directory with bagit.txt and nothing of a sealbox bundle (no `Sealbox-*` field in
    bag-info.txt, no signature, key, custody or item record)."""
    if not os.path.lexists(path / "bagit.txt"):
        return False
    if any(os.path.lexists(path / marker) for marker in _SEALBOX_MARKERS):
        return False
    data, _problem = _read_capped(path / "bag-info.txt", MAX_BAG_INFO)
    return data is None or not re.search(rb"(?m)^\s*Sealbox-[A-Za-z-]*\s*:", data)


def validate_plain_bag(path: Path, *, workers: int | None = None) -> PlainBagReport:
    """Validate the bag at `path` as RFC 8493 BagIt (or one of its drafts, 0.93-0.97)."""
    report = PlainBagReport(path)
    _Validator(path, report, workers or min(8, os.cpu_count() or 1)).run()
    return report


def _read_capped(path: Path, cap: int) -> tuple[bytes | None, str | None]:
    """The bytes of a regular file no bigger than `cap`, or (None, why not): a link, FIFO,
    device or directory is never opened for reading."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, "is a symbolic link"
        if exc.errno == errno.ENOENT:
            return None, "missing"
        return None, f"cannot be opened: {exc.strerror}"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, "is not a regular file"
        if st.st_size > cap:
            return None, f"is {st.st_size} bytes, over the cap of {cap} bytes for this file"
        chunks = []
        total = 0
        while chunk := os.read(fd, min(_BUF, cap + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                return None, f"grew over the cap of {cap} bytes while read"
        return b"".join(chunks), None
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror}"
    finally:
        os.close(fd)


@dataclass
class _Entry:
    digest: str
    where: str


@dataclass
class _Manifest:
    name: str
    algorithm: str
    tag: bool
    entries: dict[str, _Entry] = field(default_factory=dict)


@dataclass
class _DiskFile:
    size: int
    nlink: int


class _Validator:
    """One validation run: phases in the order of RFC 8493 §3 (declaration, structure, tag
    files, completeness, then checksums)."""

    def __init__(self, bag: Path, report: PlainBagReport, workers: int) -> None:
        self.bag = bag
        self.report = report
        self.workers = workers
        self.encoding = "utf-8"
        self.v10 = True  # RFC 8493 rules unless the declaration names an earlier draft
        self.manifests: list[_Manifest] = []
        self.payload: dict[str, _DiskFile] = {}
        self.tag_files: dict[str, _DiskFile] = {}
        self.fetched: dict[str, str] = {}  # path -> where in fetch.txt
        self.version_tuple = (1, 0)
        self._oxum: tuple[int, int] | None = None
        self._oxum_failed = False

    # -- phases ---------------------------------------------------------------------------------

    def run(self) -> None:
        if not self.bag.is_dir():
            self.report.error("bagit-not-a-directory", str(self.bag), "not a directory")
            return
        if not self._declaration():
            return
        self._walk()
        self._bag_info()
        self._read_manifests()
        self._fetch()
        self._completeness()
        self._collisions()
        # When data/ already differs from Payload-Oxum, hash no more than the bag declares.
        self._checksums(budget=self._oxum[0] if self._oxum_failed and self._oxum else None)

    def _declaration(self) -> bool:
        """bagit.txt: exactly `BagIt-Version: M.N` then `Tag-File-Character-Encoding: ENC`,
        UTF-8 without a byte-order mark. Nothing else can be read without it."""
        r = self.report
        data, problem = _read_capped(self.bag / "bagit.txt", MAX_DECLARATION)
        if data is None:
            if problem == "missing":
                r.error("bagit-declaration-missing", "bagit.txt", "the bag declaration bagit.txt is missing")
            else:
                r.error("bagit-declaration-invalid", "bagit.txt", f"the bag declaration {problem}")
            return False
        if data.startswith(codecs.BOM_UTF8):
            r.error(
                "bagit-declaration-invalid", "bagit.txt", "starts with a byte-order mark (RFC 8493 §2.1.1)"
            )
            return False
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            r.error("bagit-declaration-invalid", "bagit.txt", "is not UTF-8")
            return False
        lines = [line for line in _split_lines(text)]
        fields: list[tuple[str, str]] = []
        for number, line in enumerate(lines, start=1):
            match = _DECLARATION_LINE.fullmatch(line)
            if match is None or match.group(1) != match.group(1).strip():
                r.error(
                    "bagit-declaration-invalid",
                    f"bagit.txt:{number}",
                    "not 'Label: value' (one colon, one space, no space before the colon)",
                    "Label: value",
                    line[:80],
                )
                return False
            fields.append((match.group(1), match.group(2)))
        labels = [label for label, _ in fields]
        if labels != ["BagIt-Version", "Tag-File-Character-Encoding"]:
            missing = [x for x in ("BagIt-Version", "Tag-File-Character-Encoding") if x not in labels]
            r.error(
                "bagit-declaration-invalid",
                "bagit.txt",
                f"missing {', '.join(missing)}" if missing else "not exactly the two required lines in order",
                "BagIt-Version, Tag-File-Character-Encoding",
                ", ".join(labels) or "nothing",
            )
            return False
        version, encoding = fields[0][1], fields[1][1]
        match = _VERSION.fullmatch(version)
        if match is None:
            r.error("bagit-version-invalid", "bagit.txt:1", "BagIt-Version is not M.N", "M.N", version)
            return False
        major, minor = int(match.group(1)), int(match.group(2))
        r.version = version
        if major > 1:
            r.error("bagit-version-unsupported", "bagit.txt:1", f"BagIt {version} is newer than 1.0")
            return False
        if version not in KNOWN_VERSIONS:
            r.warn("bagit-version-unknown", "bagit.txt:1", f"BagIt {version} is not a published version")
        self.v10 = major >= 1
        self.version_tuple = (major, minor)
        try:
            self.encoding = codecs.lookup(encoding).name
        except LookupError:
            r.error("bagit-encoding-unknown", "bagit.txt:2", f"unknown character encoding '{encoding}'")
            return False
        r.encoding = encoding
        if self.encoding != "utf-8":
            r.warn("bagit-encoding-not-utf8", "bagit.txt:2", f"tag files in {encoding}: UTF-8 is recommended")
        if not (self.bag / "data").is_dir() or (self.bag / "data").is_symlink():
            r.error("bagit-payload-dir-missing", "data", "the payload directory data/ is missing")
        return True

    def _walk(self) -> None:
        """List every entry of the bag without following links: payload files under data/, tag
        files elsewhere. Links and special files are errors wherever they are."""
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            try:
                entries = list(os.scandir(self.bag / rel_dir if rel_dir else self.bag))
            except OSError as exc:
                self.report.error("bagit-unreadable", rel_dir or ".", f"cannot list: {exc.strerror}")
                continue
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    self.report.error("bagit-unreadable", rel, f"cannot stat: {exc.strerror}")
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(rel)
                elif stat.S_ISLNK(st.st_mode):
                    self.report.error("bagit-link", rel, "is a symbolic link: a bag holds only regular files")
                elif not stat.S_ISREG(st.st_mode):
                    self.report.error("bagit-not-regular", rel, f"is a {_file_type(st.st_mode)}, not a file")
                else:
                    record = _DiskFile(st.st_size, st.st_nlink)
                    if rel.startswith("data/"):
                        self.payload[rel] = record
                    else:
                        self.tag_files[rel] = record
                    if st.st_nlink > 1:
                        self.report.warn(
                            "bagit-hard-link",
                            rel,
                            f"has {st.st_nlink} names: a change through another name changes it here",
                        )
                if entry.name in OS_METADATA or entry.name.startswith("._"):
                    self.report.warn("bagit-os-metadata-file", rel, "a file the operating system made itself")

    def _bag_info(self) -> None:
        """bag-info.txt (package-info.txt before 0.96): labels, continuation lines, Payload-Oxum."""
        name = "bag-info.txt" if self.version_tuple >= (0, 96) else "package-info.txt"
        if not os.path.lexists(self.bag / name):
            return  # optional; required only if a tag manifest lists it (checked there)
        text = self._tag_text(name, MAX_BAG_INFO)
        if text is None:
            return
        info = self.report.info
        last: str | None = None
        for number, line in enumerate(_split_lines(text), start=1):
            where = f"{name}:{number}"
            if line[:1] in (" ", "\t"):
                if last is None:
                    self.report.error(
                        "bagit-info-line-malformed", where, "continuation line before any label"
                    )
                else:
                    info[last][-1] += " " + line.strip()
                continue
            if not line.strip():
                self.report.warn("bagit-info-line-malformed", where, "empty line")
                continue
            label, sep, value = line.partition(":")
            if not sep or not label.strip():
                self.report.error(
                    "bagit-info-line-malformed", where, "not 'Label: value'", "Label: value", line[:80]
                )
                last = None
                continue
            if label != label.strip():
                add = self.report.error if self.v10 else self.report.warn
                add("bagit-info-label-whitespace", where, f"label '{label}' starts or ends with whitespace")
            last = label.strip()
            info.setdefault(last, []).append(value.strip())
        oxums = {v for k, vs in info.items() if k.lower() == "payload-oxum" for v in vs}
        if len(oxums) > 1:
            self.report.error("bagit-oxum-malformed", name, "more than one different Payload-Oxum")
        elif oxums:
            oxum = oxums.pop()
            match = _OXUM.fullmatch(oxum)
            if match is None:
                self.report.error(
                    "bagit-oxum-malformed",
                    name,
                    "Payload-Oxum is not <bytes>.<files>",
                    "<bytes>.<files>",
                    oxum,
                )
            else:
                self._oxum = (int(match.group(1)), int(match.group(2)))

    def _read_manifests(self) -> None:
        for rel in sorted(self.tag_files):
            match = _MANIFEST_NAME.fullmatch(rel)
            if match is None:
                continue
            tag, algorithm = bool(match.group(1)), match.group(2).lower()
            if algorithm not in ALGORITHMS:
                self.report.warn(
                    "bagit-algorithm-unknown",
                    rel,
                    f"checksum algorithm '{algorithm}' is unknown: not checked",
                )
                continue
            manifest = _Manifest(rel, algorithm, tag)
            self._parse_manifest(manifest)
            self.manifests.append(manifest)
        payload = [m for m in self.manifests if not m.tag]
        if not payload:
            self.report.error("bagit-manifest-missing", ".", "no payload manifest (manifest-<algorithm>.txt)")
        self.report.algorithms = sorted({m.algorithm for m in payload})
        if payload and all(m.algorithm in ("md5", "sha1") for m in payload):
            self.report.warn(
                "bagit-weak-algorithm", payload[0].name, "only MD5/SHA-1 manifests: collisions can be made"
            )

    def _parse_manifest(self, manifest: _Manifest) -> None:
        width = hashlib.new(manifest.algorithm).digest_size * 2
        for number, line in self._tag_lines(manifest.name, MAX_TAG_FILE):
            where = f"{manifest.name}:{number}"
            if not line.strip():
                self.report.warn("bagit-manifest-line-malformed", where, "empty line")
                continue
            parts = line.split(None, 1) if line[:1] not in (" ", "\t") else []
            if len(parts) != 2 or len(parts[0]) != width or not _HEX.fullmatch(parts[0]):
                self.report.error(
                    "bagit-manifest-line-malformed",
                    where,
                    "not '<checksum> <path>'",
                    f"<{manifest.algorithm} in hex> <path>",
                    line[:120],
                )
                continue
            digest, raw = parts[0].lower(), parts[1]
            if raw.startswith("*") and line[width : width + 2] == " *":
                self.report.warn(
                    "bagit-path-md5sum-marker", where, "md5sum's binary-mode '*' before the path"
                )
                raw = raw[1:]
            rel = self._path(raw, where, payload=not manifest.tag)
            if rel is None:
                continue
            if len(manifest.entries) >= MAX_ENTRIES:
                self.report.error("bagit-manifest-too-long", where, f"more than {MAX_ENTRIES} entries")
                return
            previous = manifest.entries.get(rel)
            if previous is None:
                manifest.entries[rel] = _Entry(digest, where)
            elif previous.digest != digest:
                self.report.error(
                    "bagit-manifest-duplicate",
                    where,
                    f"'{rel}' listed again with another checksum",
                    previous.digest,
                    digest,
                )
            elif self.v10:
                self.report.error(
                    "bagit-manifest-duplicate", where, f"'{rel}' listed twice (RFC 8493 §2.1.3)"
                )
            else:
                self.report.warn(
                    "bagit-manifest-duplicate", where, f"'{rel}' listed twice with the same checksum"
                )

    def _path(self, raw: str, where: str, *, payload: bool) -> str | None:
        """A manifest or fetch.txt path, decoded (RFC 8493 §2.1.3) and checked to stay inside
        the bag (payload paths: inside data/). None when unusable (an error was reported)."""
        decoded = _PERCENT.sub(lambda m: {"0a": "\n", "0d": "\r", "25": "%"}[m.group(1).lower()], raw)
        if self.v10 and re.search(r"%(?![0-9A-Fa-f]{2})", raw):
            self.report.warn("bagit-path-unencoded-percent", where, "a '%' that is not percent-encoded")
        if (
            decoded.startswith(("/", "~"))
            or "\\" in decoded
            or "\0" in decoded
            or _DRIVE.match(decoded)
            or ".." in decoded.split("/")
        ):
            self.report.error("bagit-path-unsafe", where, f"path '{raw}' points outside the bag")
            return None
        parts = decoded.split("/")
        clean = [p for p in parts if p not in ("", ".")]
        if clean != parts:
            self.report.warn("bagit-path-noncanonical", where, f"path '{raw}' is not in canonical form")
        rel = "/".join(clean)
        if not rel:
            self.report.error("bagit-manifest-line-malformed", where, "empty path")
            return None
        if payload and not rel.startswith("data/"):
            self.report.error("bagit-path-outside-payload", where, f"'{rel}' is not under data/")
            return None
        if not payload and rel.startswith("data/"):
            self.report.warn("bagit-tagmanifest-lists-payload", where, f"'{rel}' is a payload file")
        return rel

    def _fetch(self) -> None:
        """fetch.txt: `URL LENGTH PATH`; a listed file not yet fetched makes the bag incomplete."""
        if "fetch.txt" not in self.tag_files:
            return
        for number, line in self._tag_lines("fetch.txt", MAX_TAG_FILE):
            where = f"fetch.txt:{number}"
            parts = line.split(None, 2)
            if len(parts) != 3 or not (parts[1] == "-" or parts[1].isdigit()):
                self.report.error(
                    "bagit-fetch-line-malformed",
                    where,
                    "not 'URL LENGTH PATH'",
                    "URL LENGTH PATH",
                    line[:120],
                )
                continue
            rel = self._path(parts[2], where, payload=True)
            if rel is None:
                continue
            self.fetched[rel] = where
            for manifest in self.manifests:
                if not manifest.tag and rel not in manifest.entries:
                    self.report.error(
                        "bagit-fetch-unlisted", where, f"'{rel}' is not listed in {manifest.name}"
                    )

    def _completeness(self) -> None:
        """RFC 8493 §3: every listed file present, every payload file listed (in every payload
        manifest from 1.0, in at least one before), Payload-Oxum matching data/."""
        r = self.report
        payload_manifests = [m for m in self.manifests if not m.tag]
        twins, dropped = self._excused_missing(payload_manifests)
        excused = twins | dropped
        for manifest in self.manifests:
            present = self._present(manifest)
            for rel, entry in manifest.entries.items():
                if rel in present or rel in excused:
                    continue
                if (self.bag / rel).is_dir():
                    r.error("bagit-manifest-lists-directory", entry.where, f"'{rel}' is a directory")
                elif manifest.tag:
                    r.error("bagit-tag-file-missing", rel, f"listed in {manifest.name} but missing")
                elif rel in self.fetched:
                    r.error(
                        "bagit-fetch-not-fetched",
                        rel,
                        f"in fetch.txt ({self.fetched[rel]}) but not fetched yet: the bag is incomplete",
                    )
                else:
                    r.error("bagit-payload-missing", rel, f"listed in {manifest.name} but missing")
        if payload_manifests:
            for rel in sorted(self.payload):
                listed = [m for m in payload_manifests if rel in m.entries]
                if not listed:
                    r.error("bagit-payload-unlisted", rel, "in data/ but in no payload manifest")
                elif self.v10 and len(listed) < len(payload_manifests):
                    names = ", ".join(m.name for m in payload_manifests if rel not in m.entries)
                    r.error("bagit-payload-unlisted", rel, f"not listed in {names} (RFC 8493 §3)")
        self._tag_coverage()
        if self._oxum is not None:
            found = (sum(f.size for f in self.payload.values()), len(self.payload) + len(dropped))
            if found != self._oxum:
                self._oxum_failed = True
                self._oxum_bytes = self._oxum[0]
                r.error(
                    "bagit-oxum-mismatch",
                    "bag-info.txt",
                    "Payload-Oxum (bytes.files) does not match data/",
                    f"{self._oxum[0]}.{self._oxum[1]}",
                    f"{found[0]}.{found[1]}",
                )

    def _present(self, manifest: _Manifest) -> dict[str, _DiskFile]:
        """The files a manifest's entries are looked up in (a tag manifest may list payload too,
        with a warning)."""
        return {**self.tag_files, **self.payload} if manifest.tag else self.payload

    def _excused_missing(self, payload_manifests: list[_Manifest]) -> tuple[set[str], set[str]]:
        """Listed payload paths missing here for a reason that loses no content, each reported as
        a warning: (twins) a second name of one file, differing only in letter case or Unicode
        normalization, with the same checksum in every manifest (one file where the bag was
        made); (dropped) an empty OS metadata file such as .DS_Store, which copies leave out."""
        twins: set[str] = set()
        dropped: set[str] = set()
        by_key: dict[str, str] = {}
        for rel in sorted(self.payload):
            by_key.setdefault(_fold(rel), rel)
        listed = {rel for m in payload_manifests for rel in m.entries}
        for rel in sorted(listed - self.payload.keys()):
            entries = [m.entries.get(rel) for m in payload_manifests]
            twin = by_key.get(_fold(rel))
            if twin is not None and all(
                (e := m.entries.get(rel)) is not None
                and (t := m.entries.get(twin)) is not None
                and e.digest == t.digest
                for m in payload_manifests
            ):
                twins.add(rel)
                self.report.warn(
                    "bagit-name-collision",
                    rel,
                    f"listed, but here only as '{twin}' with the same checksum: one file where names "
                    "ignore letter case or Unicode normalization",
                )
            elif rel.rsplit("/", 1)[-1] in OS_METADATA and all(
                e is not None and e.digest == hashlib.new(m.algorithm).hexdigest()
                for m, e in zip(payload_manifests, entries, strict=True)
            ):
                dropped.add(rel)
                self.report.warn(
                    "bagit-os-metadata-file",
                    rel,
                    "listed as an empty OS metadata file and missing here (copies leave these out)",
                )
        return twins, dropped

    def _tag_coverage(self) -> None:
        tag_manifests = [m for m in self.manifests if m.tag]
        if not tag_manifests:
            return
        listed = set().union(*(m.entries.keys() for m in tag_manifests))
        for rel in sorted(self.tag_files):
            if rel not in listed and not rel.startswith("tagmanifest-"):
                self.report.warn("bagit-tag-file-unlisted", rel, "tag file not listed in any tag manifest")
        if len({frozenset(m.entries) for m in tag_manifests}) > 1:
            self.report.warn(
                "bagit-tagmanifests-differ", tag_manifests[0].name, "the tag manifests list different files"
            )

    def _collisions(self) -> None:
        """Payload names that are one file on a case-insensitive or normalizing file system."""
        seen: dict[str, str] = {}
        for rel in sorted(self.payload):
            key = _fold(rel)
            other = seen.setdefault(key, rel)
            if other != rel:
                self.report.warn(
                    "bagit-name-collision",
                    rel,
                    f"same name as '{other}' where case or Unicode normalization is ignored",
                )

    def _checksums(self, budget: int | None = None) -> None:
        """Hash every listed file once for all its algorithms, in parallel. With a `budget` (the
        bytes Payload-Oxum declares, when data/ no longer matches it) hashing stops there."""
        wanted: dict[str, dict[str, list[tuple[_Manifest, _Entry]]]] = {}
        for manifest in self.manifests:
            present = self._present(manifest)
            for rel, entry in manifest.entries.items():
                if rel in present:
                    wanted.setdefault(rel, {}).setdefault(manifest.algorithm, []).append((manifest, entry))
        todo = []
        for rel in sorted(r for r in wanted if r not in self.payload):
            if self.tag_files[rel].size > MAX_TAG_FILE:
                self.report.error("bagit-tag-file-unreadable", rel, f"over the cap of {MAX_TAG_FILE} bytes")
            else:
                todo.append(rel)
        payload = sorted(r for r in wanted if r in self.payload)
        if budget is not None:
            spent, cut = 0, len(payload)
            for i, rel in enumerate(payload):
                spent += self.payload[rel].size
                if spent > budget:
                    cut = i
                    break
            if cut < len(payload):
                self.report.error(
                    "bagit-payload-not-checked",
                    payload[cut],
                    f"{len(payload) - cut} file(s) not hashed: data/ already holds more than the "
                    f"{budget} bytes Payload-Oxum declares",
                )
                payload = payload[:cut]
        todo += payload
        with ThreadPoolExecutor(self.workers) as pool:
            results = pool.map(lambda rel: (rel, _hash_file(self.bag / rel, sorted(wanted[rel]))), todo)
            for rel, (digests, problem) in results:
                tag = rel not in self.payload
                if problem is not None:
                    self.report.error("bagit-unreadable", rel, problem)
                    continue
                for algorithm, pairs in wanted[rel].items():
                    for manifest, entry in pairs:
                        if digests[algorithm] != entry.digest:
                            self.report.error(
                                "bagit-tag-file-changed" if tag else "bagit-payload-changed",
                                rel,
                                f"{algorithm} differs from {manifest.name}",
                                entry.digest,
                                digests[algorithm],
                            )
        self.report.payload_files = len(self.payload)
        self.report.payload_bytes = sum(f.size for f in self.payload.values())

    # -- tag file text --------------------------------------------------------------------------

    def _tag_text(self, rel: str, cap: int) -> str | None:
        data, problem = _read_capped(self.bag / rel, cap)
        if data is None:
            self.report.error("bagit-tag-file-unreadable", rel, f"{rel} {problem}")
            return None
        if self.encoding == "utf-8" and data.startswith(codecs.BOM_UTF8):
            self.report.warn("bagit-byte-order-mark", rel, "starts with a UTF-8 byte-order mark")
            data = data[len(codecs.BOM_UTF8) :]
        try:
            return data.decode(self.encoding)
        except UnicodeDecodeError as exc:
            self.report.error(
                "bagit-tag-file-undecodable", rel, f"not valid {self.report.encoding} at byte {exc.start}"
            )
            return None

    def _tag_lines(self, rel: str, cap: int) -> Iterator[tuple[int, str]]:
        """Numbered lines of a tag file, decoded; stops with an error at an over-long line."""
        text = self._tag_text(rel, cap)
        if text is None:
            return
        for number, line in enumerate(_split_lines(text), start=1):
            if len(line) > MAX_LINE:
                self.report.error("bagit-line-too-long", f"{rel}:{number}", f"over {MAX_LINE} characters")
                return
            yield number, line


def _split_lines(text: str) -> list[str]:
    """Lines ended by LF, CR or CRLF (RFC 8493 allows all three), the last one maybe unended."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _fold(rel: str) -> str:
    return unicodedata.normalize("NFC", rel).casefold()


def _file_type(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def _hash_file(path: Path, algorithms: list[str]) -> tuple[dict[str, str], str | None]:
    """Digests of a regular file, read once for all algorithms; (_, why) when it cannot be read,
    is not a regular file any more, or grows while read."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except OSError as exc:
        return {}, f"cannot be opened: {exc.strerror}"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return {}, "is not a regular file"
        hashers = [hashlib.new(a) for a in algorithms]
        left = st.st_size + 1  # one byte more tells that it grew
        while left > 0 and (chunk := os.read(fd, min(_BUF, left))):
            left -= len(chunk)
            for h in hashers:
                h.update(chunk)
        if left <= 0:
            return {}, f"grew while read (was {st.st_size} bytes)"
        return {a: h.hexdigest() for a, h in zip(algorithms, hashers, strict=True)}, None
    except OSError as exc:
        return {}, f"cannot be read: {exc.strerror}"
    finally:
        os.close(fd)
