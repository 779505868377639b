# ruff: noqa: E501 (generated data: long checksums and file contents)
"""The Library of Congress BagIt conformance suite, case by case, rebuilt by code.

Each case is named as in github.com/LibraryOfCongress/bagit-conformance-suite (a public-domain
work of the U.S. Government) and lists the files to write; manifests are computed from the
files they list, except where the suite has a checksum that does not match (written as a
(digest, path) pair). `scripts/bagit-conformance DIR --check-fixtures` compares these with
a checkout byte for byte.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class M:
    """A manifest: one line per entry, a path (its checksum computed from the case's file) or a
    (digest, path) pair written as is."""

    algorithm: str
    entries: list[str | tuple[str, str]]
    sep: str = "  "
    eol: str = "\n"
    final_eol: bool = True

    def render(self, written: dict[str, bytes]) -> bytes:
        lines = []
        for entry in self.entries:
            digest, path = entry if isinstance(entry, tuple) else (self._digest(written[entry]), entry)
            lines.append(f"{digest}{self.sep}{path}")
        return (self.eol.join(lines) + (self.eol if self.final_eol else "")).encode()

    def _digest(self, data: bytes) -> str:
        return hashlib.new(self.algorithm, data).hexdigest()


@dataclass(frozen=True)
class SuiteCase:
    """One bag of the suite: its name there, what a validator must say, the finding kind that
    says it (the first error of an invalid bag, the warning of a warning case), its files."""

    name: str
    expect: str  # "valid", "invalid" or "warning"
    kind: str | None
    files: dict[str, bytes | M]

    @property
    def id(self) -> str:
        return self.name.replace("/", ":")

    def build(self, dest: Path) -> Path:
        """Write the bag under `dest`: plain files first, then payload manifests, then tag
        manifests (each computed from what was written before it)."""
        written: dict[str, bytes] = {}

        def order(rel: str) -> int:
            if not isinstance(self.files[rel], M):
                return 0
            return 2 if rel.startswith("tagmanifest-") else 1

        for rel in sorted(self.files, key=order):
            spec = self.files[rel]
            data = spec.render(written) if isinstance(spec, M) else spec
            written[rel] = data
            path = dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return dest


TEXT_1 = b"Source-Organization: Spengler University\r\nOrganization-Address: 1400 Elm St., Cupertino, California, 95014\r\nContact-Name: Edna Janssen\r\nContact-Phone: +1 408-555-1212\r\nContact-Email: ej@spengler.edu\r\nExternal-Description: Uncompressed greyscale TIFF images from the Yoshimuri\r\n   papers collection.\r\nPacking-Date: 2009-10-14\r\nExternal-Identifier: spengler_yoshimuri_001\r\nPackage-Size: 0.7 KB\r\nBag-Group-Identifier: spengler_yoshimuri\r\nBag-Count: 1 of 15\r\nInternal-Sender-Identifier: /storage/images/yoshimuri\r\nInternal-Sender-Description: Uncompressed greyscale TIFFs created from\r\n   microfilm.\r\nPayload-Oxum: 25.5\r\n"
TEXT_2 = b"Source-Organization: Spengler University\r\nSource-Organization: Spengler University2\r\nOrganization-Address: 1400 Elm St., Cupertino, California, 95014\r\nOrganization-Address: 1401 Elm St., Cupertino, California, 95014\r\nContact-Name: Edna Janssen\r\nContact-Name: foo Janssen\r\nContact-Phone: +1 408-555-1212\r\nContact-Phone: +1 111-111-1111\r\nContact-Email: ej@spengler.edu\r\nContact-Email: foo@spengler.edu\r\nPacking-Date: 2009-10-14\r\nPacking-Date: 2016-10-14\r\n"
TEXT_3 = b"Source-Organization: Spengler University\r\nSource-Organization: Foo University\r\nOrganization-Address: 1400 Elm St., Cupertino, California, 95014\r\nOrganization-Address: 0 Elm St., Cupertino, California, 95014\r\nContact-Name: Edna Janssen\r\nContact-Name: Foo Bar\r\nContact-Phone: +1 408-555-1212\r\nContact-Phone: +1 111-111-1111\r\nContact-Email: ej@spengler.edu\r\nContact-Email: foo@spengler.edu\r\n"
TEXT_4 = b"Source-Organization: Spengler University\r\nOrganization-Address: 1400 Elm St., Cupertino, California, 95014\r\nContact-Name: Edna Janssen\r\nContact-Phone: +1 408-555-1212\r\nContact-Email: ej@spengler.edu\r\nExternal-Description: Uncompressed greyscale TIFF images from the\r\n         Yoshimuri papers collection.\r\nPacking-Date: 2008-01-15\r\nExternal-Identifier: spengler_yoshimuri_001\r\nPackage-Size: 260 GB\r\nBag-Group-Identifier: spengler_yoshimuri\r\nBag-Count: 1 of 15\r\nInternal-Sender-Identifier: /storage/images/yoshimuri\r\nInternal-Sender-Description: Uncompressed greyscale TIFFs created from\r\n         microfilm.\r\n"
TEXT_5 = b"Source-Organization: Spengler University\r\nOrganization-Address: 1400 Elm St., Cupertino, California, 95014\r\nContact-Name: Edna Janssen\r\nContact-Phone: +1 408-555-1212\r\nContact-Email: ej@spengler.edu\r\nExternal-Description: Uncompressed greyscale TIFF images from the\r\n         Yoshimuri papers collection.\r\nBagging-Date: 2008-01-15\r\nExternal-Identifier: spengler_yoshimuri_001\r\nBag-Size: 260 GB\r\nBag-Group-Identifier: spengler_yoshimuri\r\nBag-Count: 1 of 15\r\nInternal-Sender-Identifier: /storage/images/yoshimuri\r\nInternal-Sender-Description: Uncompressed greyscale TIFFs created from\r\n         microfilm.\r\n"
TEXT_6 = b"8ad8757baa8564dc136c1e07507f4a98 data/dir1/test3.txt\r\ne3d704f3542b44a621ebed70dc0efe13 data/dir2/dir3/test5.txt\r\n86985e105f79b95d6bc918fb45ec7727 data/dir2/test4.txt\r\n5a105e8b9d40e1329780d62ea2265d8a data/test1.txt\r\nad0234829205b9033196ba818f7a872b data/test2.txt\r\n"
TEXT_7 = b"2770a40efa209feff555c7f0d72db5b4  bagit.txt\r\nba8644f8c8b7adb3d5cf3ad4245606e8  manifest-md5.txt\r\n68b1dabaea8770a0e9411dc5d99341f9  bag-info.txt\r\n"
TEXT_8 = b"http://localhost:8989/bags/v0_96/holey-bag/data/dir1/test3.txt - data/dir1/test3.txt\r\nhttp://localhost:8989/bags/v0_96/holey-bag/data/dir2/dir3/test5.txt - data/dir2/dir3/test5.txt\r\nhttp://localhost:8989/bags/v0_96/holey-bag/data/dir2/test4.txt - data/dir2/test4.txt\r\nhttp://localhost:8989/bags/v0_96/holey-bag/data/test%201.txt - data/test 1.txt\r\nhttp://localhost:8989/bags/v0_96/holey-bag/data/test2.txt - data/test2.txt\r\n"
TEXT_9 = b"Bag-Software-Agent: bagit.py <http://github.com/libraryofcongress/bagit-python>\nBagging-Date: 2016-02-26\nContact-Email: cadams@loc.gov\nContact-Name: Chris Adams\nPayload-Oxum: 58.2\n"
TEXT_10 = b"Bag-Software-Agent: bagit.py v1.5.4 <http://github.com/libraryofcongress/bagit-python>\nBagging-Date: 2017-01-27\nPayload-Oxum: 6.1\n"
TEXT_11 = b"Bag-Software-Agent: bagit.py <http://github.com/libraryofcongress/bagit-python>\nBagging-Date: 2016-02-26\nPayload-Oxum: 29.1\n"
TEXT_12 = b"Bag-Software-Agent: bagit.py v1.6.0b10.dev2+g7659427 <https://github.com/LibraryOfCongress/bagit-python>\nBagging-Date: 2017-11-02\nPayload-Oxum: 39.1\n"
TEXT_13 = b"http://localhost:8989/bags/v0_96/holey-bag/data/dir1/test3.txt - ../../../README.md\r\n"
TEXT_14 = b"Bag-Software-Agent: bagit.py v1.6.0b10.dev2+g7659427 <https://github.com/LibraryOfCongress/bagit-python>\nBagging-Date: 2017-11-02\nPayload-Oxum: 123.1\n"
TEXT_15 = b"This bag has the same file listed twice with two different hash values. Implementations must return an error in this case.\n"
TEXT_16 = b"\xfe\xff\x00B\x00a\x00g\x00-\x00S\x00o\x00f\x00t\x00w\x00a\x00r\x00e\x00-\x00A\x00g\x00e\x00n\x00t\x00:\x00 \x00b\x00a\x00g\x00i\x00t\x00.\x00p\x00y\x00 \x00<\x00h\x00t\x00t\x00p\x00:\x00/\x00/\x00g\x00i\x00t\x00h\x00u\x00b\x00.\x00c\x00o\x00m\x00/\x00l\x00i\x00b\x00r\x00a\x00r\x00y\x00o\x00f\x00c\x00o\x00n\x00g\x00r\x00e\x00s\x00s\x00/\x00b\x00a\x00g\x00i\x00t\x00-\x00p\x00y\x00t\x00h\x00o\x00n\x00>\x00\n\x00B\x00a\x00g\x00g\x00i\x00n\x00g\x00-\x00D\x00a\x00t\x00e\x00:\x00 \x002\x000\x001\x006\x00-\x000\x002\x00-\x002\x006\x00\n\x00C\x00o\x00n\x00t\x00a\x00c\x00t\x00-\x00E\x00m\x00a\x00i\x00l\x00:\x00 \x00c\x00a\x00d\x00a\x00m\x00s\x00@\x00l\x00o\x00c\x00.\x00g\x00o\x00v\x00\n\x00C\x00o\x00n\x00t\x00a\x00c\x00t\x00-\x00N\x00a\x00m\x00e\x00:\x00 \x00C\x00h\x00r\x00i\x00s\x00 \x00A\x00d\x00a\x00m\x00s\x00\n\x00P\x00a\x00y\x00l\x00o\x00a\x00d\x00-\x00O\x00x\x00u\x00m\x00:\x00 \x005\x008\x00.\x002\x00\n"
TEXT_17 = b"\xfe\xff\x007\x005\x001\x00e\x003\x002\x001\x007\x009\x00e\x00c\x008\x00a\x00c\x00d\x007\x001\x000\x008\x001\x006\x005\x004\x005\x002\x007\x00f\x002\x00e\x007\x007\x001\x00 \x00 \x00d\x00a\x00t\x00a\x00/\x00b\x00a\x00r\x00e\x00-\x00f\x00i\x00l\x00e\x00n\x00a\x00m\x00e\x00\n\x008\x006\x00e\x008\x002\x006\x001\x00a\x00e\x009\x00e\x008\x003\x009\x007\x00a\x003\x00f\x005\x007\x000\x004\x006\x009\x002\x003\x009\x004\x003\x00a\x004\x004\x00 \x00 \x00d\x00a\x00t\x00a\x00/\x00t\x00e\x00x\x00t\x00-\x00f\x00i\x00l\x00e\x00.\x00t\x00x\x00t\x00\n"
TEXT_18 = b"\xfe\xff\x003\x005\x006\x00b\x007\x001\x005\x00f\x003\x007\x003\x006\x004\x007\x00b\x00a\x002\x00d\x008\x004\x001\x00d\x00c\x008\x000\x001\x00d\x00b\x005\x001\x009\x003\x00 \x00 \x00b\x00a\x00g\x00-\x00i\x00n\x00f\x00o\x00.\x00t\x00x\x00t\x00\n\x001\x002\x004\x009\x003\x008\x001\x00e\x003\x005\x004\x00b\x004\x004\x008\x006\x001\x00b\x00a\x005\x005\x00d\x00c\x00b\x007\x000\x00f\x007\x008\x005\x003\x00e\x00 \x00 \x00b\x00a\x00g\x00i\x00t\x00.\x00t\x00x\x00t\x00\n\x006\x00d\x004\x002\x000\x00b\x00c\x00f\x00d\x007\x00f\x007\x00a\x00d\x007\x00b\x009\x000\x009\x003\x00c\x006\x00b\x006\x00b\x00e\x000\x008\x00e\x00a\x002\x00e\x00 \x00 \x00m\x00a\x00n\x00i\x00f\x00e\x00s\x00t\x00-\x00m\x00d\x005\x00.\x00t\x00x\x00t\x00\n"
TEXT_19 = b"Bagging-Date: 2016-02-26\nBagging-Date: 2016-03-10\nContact-Email: cadams@loc.gov\ncontact-name: Chris Adams\nContact-Email: jsca@loc.gov\nContact-Name: John Scancella\nCase-Insensitivity-Test: 1\nCASE-INSENSITIVITY-TEST: 2\ncase-insensitivity-test: 3"
TEXT_20 = b"Bag-Software-Agent: bagit.py <http://github.com/libraryofcongress/bagit-python>\nBagging-Date: 2016-02-26\nPayload-Oxum: 377.6\n"
TEXT_21 = b"751e32179ec8acd71081654527f2e771  data/bare-filename\n86e8261ae9e8397a3f57046923943a44  data/text-file.txt\n"
TEXT_22 = b"a9ca1dd1e555f03147e4513070966839 bag-info.txt\n9e5ad981e0d29adc278f6a294b8c2aca bagit.txt\nc9dca95b4b6c69ebc246adbb31a9c5ee manifest-md5.txt\n"
TEXT_23 = b"Bag-Software-Agent: bagit.py v1.6.1 <https://github.com/LibraryOfCongress/bagit-python>\nBagging-Date: 2017-11-03\nPayload-Oxum: 80.1\nTest-Tag: 1\nTest-Tag:   2\nTest-Tag : 3\nTest-Tag : 4\nTest-Tag    :   5\n"
TEXT_24 = b"This bag should validate despite having extra whitespace around metadata fields\n"
TEXT_25 = b"Bag-Software-Agent: bagit.py v1.5.4 <http://github.com/libraryofcongress/bagit-python>\nBagging-Date: 2017-01-26\nPayload-Oxum: 6.1\n"
TEXT_26 = b"since Mac normalizes filenames automatically this will not produce a warning, but it should for other types of operating systems/filesystems\n"
TEXT_27 = b"Bag-Software-Agent: bagit.py v1.6.0b10.dev2+g7659427 <https://github.com/LibraryOfCongress/bagit-python>\nBagging-Date: 2017-11-02\nPayload-Oxum: 186.1\n"
TEXT_28 = b"This bag contains a manifest which lists the same entry twice. Since the hash\nvalues are the same, it is acceptable for implementations to accept the bag but\na warning should be issued.\n"
TEXT_29 = b"2017-11-02 13:59:17,971 - INFO - Verifying checksum for file /Users/cadams/Projects/bagit-conformance-suite/v1.0/warning/same-filename-listed-twice-with-the-same-hash/manifest-sha256.txt\n2017-11-02 13:59:17,972 - INFO - Verifying checksum for file /Users/cadams/Projects/bagit-conformance-suite/v1.0/warning/same-filename-listed-twice-with-the-same-hash/bag-info.txt\n2017-11-02 13:59:17,972 - INFO - Verifying checksum for file /Users/cadams/Projects/bagit-conformance-suite/v1.0/warning/same-filename-listed-twice-with-the-same-hash/manifest-sha512.txt\n2017-11-02 13:59:17,972 - INFO - Verifying checksum for file /Users/cadams/Projects/bagit-conformance-suite/v1.0/warning/same-filename-listed-twice-with-the-same-hash/bagit.txt\n2017-11-02 13:59:17,972 - INFO - Verifying checksum for file /Users/cadams/Projects/bagit-conformance-suite/v1.0/warning/same-filename-listed-twice-with-the-same-hash/data/README\n2017-11-02 13:59:17,972 - INFO - . is valid\n"
TEXT_30 = b"Bag-Software-Agent: bagit.py v1.5.4 <http://github.com/libraryofcongress/bagit-python>\nBagging-Date: 2017-01-26\nPayload-Oxum: 0.2\n"
TEXT_31 = b"https://en.wikipedia.org - %HomeDrive%\\Windows\\System32\\setx.exe\n"
TEXT_32 = b"(error) Tag manifest tagmanifest-md5.txt contains invalid files: [manifest-md5.txt]\n"
TEXT_33 = b"https://en.wikipedia.org - \\\\?\\UNC\\server\\Windows\\System32\\setx.exe\n"
TEXT_34 = b"Bag-Software-Agent: bagit.py v0.0.dev0 <https://github.com/LibraryOfCongress/bagit-python>\nBagging-Date: 2017-11-07\nPayload-Oxum: 77.1\n"
TEXT_35 = b"This bag has whitespace around the bagit.txt values in violation of the spec\n"
TEXT_36 = b"this file should be missing from a manifest so that it becomes invalid\n"

CASES = [
    SuiteCase(
        "v0.93/valid/basic-bag",
        "valid",
        None,
        {
            "bagit.txt": b"BagIt-Version: 0.93\r\nTag-File-Character-Encoding: UTF-8\r\n",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test1.txt": b"test1",
            "data/test2.txt": b"test2",
            "package-info.txt": TEXT_1,
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/test1.txt",
                    "data/test2.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                ],
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M(
                "md5", ["bagit.txt", "package-info.txt", "manifest-md5.txt"], eol="\r\n"
            ),
        },
    ),
    SuiteCase(
        "v0.93/valid/duplicate-metadata-entries",
        "valid",
        None,
        {
            "bagit.txt": b"BagIt-Version: 0.93\r\nTag-File-Character-Encoding: UTF-8\r\n",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test1.txt": b"test1",
            "data/test2.txt": b"test2",
            "package-info.txt": TEXT_2,
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/test1.txt",
                    "data/test2.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                ],
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M(
                "md5", ["bagit.txt", "package-info.txt", "manifest-md5.txt"], eol="\r\n"
            ),
        },
    ),
    SuiteCase(
        "v0.94/valid/basic-bag",
        "valid",
        None,
        {
            "bagit.txt": b"BagIt-Version: 0.94\r\nTag-File-Character-Encoding: UTF-8\r\n",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test1.txt": b"test1",
            "data/test2.txt": b"test2",
            "package-info.txt": TEXT_1,
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/test1.txt",
                    "data/test2.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                ],
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M(
                "md5", ["bagit.txt", "package-info.txt", "manifest-md5.txt"], eol="\r\n"
            ),
        },
    ),
    SuiteCase(
        "v0.94/valid/duplicate-metadata-entries",
        "valid",
        None,
        {
            "bagit.txt": b"BagIt-Version: 0.94\r\nTag-File-Character-Encoding: UTF-8\r\n",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test1.txt": b"test1",
            "data/test2.txt": b"test2",
            "package-info.txt": TEXT_3,
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/test1.txt",
                    "data/test2.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                ],
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M(
                "md5", ["bagit.txt", "package-info.txt", "manifest-md5.txt"], eol="\r\n"
            ),
        },
    ),
    SuiteCase(
        "v0.95/valid/basic-bag",
        "valid",
        None,
        {
            "bagit.txt": b"BagIt-Version: 0.95\r\nTag-File-Character-Encoding: UTF-8",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test1.txt": b"test1",
            "data/test2.txt": b"test2",
            "package-info.txt": TEXT_4,
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                    "data/test1.txt",
                    "data/test2.txt",
                ],
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M(
                "md5", ["bagit.txt", "manifest-md5.txt", "package-info.txt"], eol="\r\n"
            ),
        },
    ),
    SuiteCase(
        "v0.95/valid/duplicate-metadata-entries",
        "valid",
        None,
        {
            "bagit.txt": b"BagIt-Version: 0.95\r\nTag-File-Character-Encoding: UTF-8",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test1.txt": b"test1",
            "data/test2.txt": b"test2",
            "package-info.txt": TEXT_3,
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                    "data/test1.txt",
                    "data/test2.txt",
                ],
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M(
                "md5", ["bagit.txt", "manifest-md5.txt", "package-info.txt"], eol="\r\n"
            ),
        },
    ),
    SuiteCase(
        "v0.96/valid/bag-in-a-bag",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.96\r\nTag-File-Character-Encoding: UTF-8",
            "data/bag/bag-info.txt": TEXT_5,
            "data/bag/bagit.txt": b"BagIt-Version: 0.96\r\nTag-File-Character-Encoding: UTF-8",
            "data/bag/data/dir1/test3.txt": b"test3",
            "data/bag/data/dir2/dir3/test5.txt": b"test5",
            "data/bag/data/dir2/test4.txt": b"test4",
            "data/bag/data/test1.txt": b"test1",
            "data/bag/data/test2.txt": b"test2",
            "data/bag/manifest-md5.txt": TEXT_6,
            "data/bag/tagmanifest-md5.txt": TEXT_7,
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/bag/bag-info.txt",
                    "data/bag/bagit.txt",
                    "data/bag/data/dir1/test3.txt",
                    "data/bag/data/dir2/dir3/test5.txt",
                    "data/bag/data/dir2/test4.txt",
                    "data/bag/data/test1.txt",
                    "data/bag/data/test2.txt",
                    "data/bag/manifest-md5.txt",
                    "data/bag/tagmanifest-md5.txt",
                ],
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"], eol="\r\n"),
        },
    ),
    SuiteCase(
        "v0.96/valid/bag-with-encoded-names",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.96\r\nTag-File-Character-Encoding: UTF-8",
            "data/%7Edir2/dir3/test5.txt": b"test5",
            "data/%7Edir2/test4.txt": b"test4",
            "data/%7Etest1.txt": b"test1",
            "data/%test2.txt": b"test2",
            "data/dir1/~test3.txt": b"test3",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/~test3.txt",
                    "data/%7Edir2/dir3/test5.txt",
                    "data/%7Edir2/test4.txt",
                    "data/%7Etest1.txt",
                    "data/%test2.txt",
                ],
                sep=" ",
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M("md5", ["bagit.txt", "manifest-md5.txt", "bag-info.txt"], eol="\r\n"),
        },
    ),
    SuiteCase(
        "v0.96/valid/bag-with-escapable-characters",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.96\r\nTag-File-Character-Encoding: UTF-8",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test file with spaces.txt": b"test file with spaces",
            "data/test1.txt": b"test1",
            "data/test2.txt": b"test2",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                    "data/test1.txt",
                    "data/test2.txt",
                    "data/test file with spaces.txt",
                ],
                sep=" ",
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M("md5", ["bagit.txt", "manifest-md5.txt", "bag-info.txt"], eol="\r\n"),
        },
    ),
    SuiteCase(
        "v0.96/valid/bag-with-leading-dot-slash-in-manifest",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.96\r\nTag-File-Character-Encoding: UTF-8",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test1.txt": b"test1",
            "data/test2.txt": b"test2",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                    "data/test1.txt",
                    ("ad0234829205b9033196ba818f7a872b", "./data/test2.txt"),
                ],
                sep=" ",
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M("md5", ["bagit.txt", "manifest-md5.txt", "bag-info.txt"], eol="\r\n"),
        },
    ),
    SuiteCase(
        "v0.96/valid/bag-with-space",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.96\r\nTag-File-Character-Encoding: UTF-8",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test 1.txt": b"test1",
            "data/test2.txt": b"test2",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                    "data/test 1.txt",
                    "data/test2.txt",
                ],
                sep=" ",
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M("md5", ["bagit.txt", "manifest-md5.txt", "bag-info.txt"], eol="\r\n"),
        },
    ),
    SuiteCase(
        "v0.96/valid/basic-bag",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.96\r\nTag-File-Character-Encoding: UTF-8",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test1.txt": b"test1",
            "data/test2.txt": b"test2",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                    "data/test1.txt",
                    "data/test2.txt",
                ],
                sep=" ",
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M("md5", ["bagit.txt", "manifest-md5.txt", "bag-info.txt"], eol="\r\n"),
        },
    ),
    SuiteCase(
        "v0.96/valid/duplicate-metadata-entries",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_3,
            "bagit.txt": b"BagIt-Version: 0.96\r\nTag-File-Character-Encoding: UTF-8",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test1.txt": b"test1",
            "data/test2.txt": b"test2",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                    "data/test1.txt",
                    "data/test2.txt",
                ],
                sep=" ",
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M("md5", ["bagit.txt", "manifest-md5.txt", "bag-info.txt"], eol="\r\n"),
        },
    ),
    SuiteCase(
        "v0.96/valid/holey-bag",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.96\r\nTag-File-Character-Encoding: UTF-8",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test 1.txt": b"test1",
            "data/test2.txt": b"test2",
            "fetch.txt": TEXT_8,
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                    "data/test 1.txt",
                    "data/test2.txt",
                ],
                sep=" ",
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M("md5", ["bagit.txt", "manifest-md5.txt", "bag-info.txt"], eol="\r\n"),
        },
    ),
    SuiteCase(
        "v0.97/invalid/baginfo-missing-encoding",
        "invalid",
        "bagit-declaration-invalid",
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M("md5", ["data/bare-filename", "data/text-file.txt"]),
            "tagmanifest-md5.txt": M(
                "md5",
                ["bag-info.txt", ("9e5ad981e0d29adc278f6a294b8c2aca", "bagit.txt"), "manifest-md5.txt"],
                sep=" ",
            ),
        },
    ),
    SuiteCase(
        "v0.97/invalid/bom-in-bagit.txt",
        "invalid",
        "bagit-declaration-invalid",
        {
            "bag-info.txt": TEXT_10,
            "bagit.txt": b"\xef\xbb\xbfBagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/hello.txt": b"hello\n",
            "manifest-md5.txt": M("md5", ["data/hello.txt"]),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"], sep=" "),
        },
    ),
    SuiteCase(
        "v0.97/invalid/corrupt-data-file",
        "invalid",
        "bagit-oxum-mismatch",
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"INVALID Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M(
                "md5", [("751e32179ec8acd71081654527f2e771", "data/bare-filename"), "data/text-file.txt"]
            ),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"], sep=" "),
        },
    ),
    SuiteCase(
        "v0.97/invalid/corrupt-tag-file",
        "invalid",
        "bagit-tag-file-changed",
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M("md5", ["data/bare-filename", "data/text-file.txt"]),
            "tagmanifest-md5.txt": M(
                "md5",
                [
                    ("deadbeefe555f03147e4513070966839", "bag-info.txt"),
                    ("deadbeefe0d29adc278f6a294b8c2aca", "bagit.txt"),
                    ("deadbeef4b6c69ebc246adbb31a9c5ee", "manifest-md5.txt"),
                ],
                sep=" ",
            ),
        },
    ),
    SuiteCase(
        "v0.97/invalid/extra-file-in-bag",
        "invalid",
        "bagit-payload-unlisted",
        {
            "bag-info.txt": TEXT_11,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bar": b"Fri Feb 26 18:29:32 EST 2016\n",
            "data/foo": b"Fri Feb 26 18:29:13 EST 2016\n",
            "manifest-md5.txt": M("md5", ["data/foo"]),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"], sep=" "),
        },
    ),
    SuiteCase(
        "v0.97/invalid/invalid-version-number",
        "invalid",
        "bagit-version-invalid",
        {
            "bag-info.txt": TEXT_12,
            "bagit.txt": b"BagIt-Version: .97\nTag-File-Character-Encoding: UTF-8\n",
            "data/README": b"This bag has an invalid version number\n",
            "manifest-sha256.txt": M("sha256", ["data/README"]),
            "manifest-sha512.txt": M("sha512", ["data/README"]),
            "tagmanifest-sha256.txt": M(
                "sha256",
                [
                    "bag-info.txt",
                    ("e91f941be5973ff71f1dccbdd1a32d598881893a7f21be516aca743da38b1689", "bagit.txt"),
                    "manifest-sha256.txt",
                    "manifest-sha512.txt",
                ],
                sep=" ",
            ),
            "tagmanifest-sha512.txt": M(
                "sha512",
                [
                    "bag-info.txt",
                    (
                        "418dcfbe17d5f4b454b18630be795462cf7da4ceb6313afa49451aa2568e41f7ca3d34cf0280c7d056dc5681a70c37586aa1755620520b9198eede905ba2d0f6",
                        "bagit.txt",
                    ),
                    "manifest-sha256.txt",
                    "manifest-sha512.txt",
                ],
                sep=" ",
            ),
        },
    ),
    SuiteCase(
        "v0.97/invalid/missing-baginfo",
        "invalid",
        "bagit-tag-file-missing",
        {
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M("md5", ["data/bare-filename", "data/text-file.txt"]),
            "tagmanifest-md5.txt": M(
                "md5",
                [("a9ca1dd1e555f03147e4513070966839", "bag-info.txt"), "bagit.txt", "manifest-md5.txt"],
                sep=" ",
            ),
        },
    ),
    SuiteCase(
        "v0.97/invalid/missing-bagit.txt",
        "invalid",
        "bagit-declaration-missing",
        {
            "bag-info.txt": TEXT_9,
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M("md5", ["data/bare-filename", "data/text-file.txt"]),
            "tagmanifest-md5.txt": M(
                "md5",
                ["bag-info.txt", ("9e5ad981e0d29adc278f6a294b8c2aca", "bagit.txt"), "manifest-md5.txt"],
                sep=" ",
            ),
        },
    ),
    SuiteCase(
        "v0.97/invalid/out-of-scope-file-paths-using-dot-notation",
        "invalid",
        "bagit-path-unsafe",
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/bare-filename",
                    "data/text-file.txt",
                    ("3e6ffc4a8a1f38a7094e15d2356d7252", "../../../README.md"),
                    ("3e6ffc4a8a1f38a7094e15d2356d7252", "\\.\\./\\.\\./\\.\\./README.md"),
                ],
            ),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"]),
        },
    ),
    SuiteCase(
        "v0.97/invalid/out-of-scope-file-paths-using-dot-notation-for-fetch",
        "invalid",
        "bagit-path-unsafe",
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "fetch.txt": TEXT_13,
            "manifest-md5.txt": M("md5", ["data/bare-filename", "data/text-file.txt"]),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt", "fetch.txt"]),
        },
    ),
    SuiteCase(
        "v0.97/invalid/same-filename-listed-twice-with-different-hashes",
        "invalid",
        "bagit-manifest-duplicate",
        {
            "bag-info.txt": TEXT_14,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/README": TEXT_15,
            "manifest-sha256.txt": M(
                "sha256",
                [
                    "data/README",
                    ("deadbeef7f08a20a04d909e5a6573f87cdf8c2e44581efa16f69e9b59632f1ab", "data/README"),
                ],
            ),
            "manifest-sha512.txt": M("sha512", ["data/README"]),
            "tagmanifest-sha256.txt": M(
                "sha256", ["bag-info.txt", "bagit.txt", "manifest-sha256.txt", "manifest-sha512.txt"], sep=" "
            ),
            "tagmanifest-sha512.txt": M(
                "sha512", ["bag-info.txt", "bagit.txt", "manifest-sha256.txt", "manifest-sha512.txt"], sep=" "
            ),
        },
    ),
    SuiteCase(
        "v0.97/linux-only/out-of-scope-file-paths-using-absolute-path",
        "invalid",
        "bagit-path-unsafe",
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/bare-filename",
                    "data/text-file.txt",
                    ("3e6ffc4a8a1f38a7094e15d2356d7252", "/tmp/foo"),
                ],
            ),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"]),
        },
    ),
    SuiteCase(
        "v0.97/linux-only/out-of-scope-file-paths-using-absolute-path-for-fetch",
        "invalid",
        "bagit-path-unsafe",
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.97\r\nTag-File-Character-Encoding: UTF-8",
            "data/test2.txt": b"test2",
            "fetch.txt": b"https://en.wikipedia.org - /tmp/test.txt\r\n",
            "manifest-md5.txt": M("md5", ["data/test2.txt"], sep=" ", eol="\r\n"),
            "tagmanifest-md5.txt": M(
                "md5", ["bagit.txt", "manifest-md5.txt", "bag-info.txt", "fetch.txt"], eol="\r\n"
            ),
        },
    ),
    SuiteCase(
        "v0.97/linux-only/out-of-scope-file-paths-using-shortcut",
        "invalid",
        "bagit-path-unsafe",
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M(
                "md5",
                ["data/bare-filename", "data/text-file.txt", ("3e6ffc4a8a1f38a7094e15d2356d7252", "~/foo")],
            ),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"]),
        },
    ),
    SuiteCase(
        "v0.97/linux-only/out-of-scope-file-paths-using-shortcut-for-fetch",
        "invalid",
        "bagit-path-unsafe",
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.97\r\nTag-File-Character-Encoding: UTF-8",
            "data/test2.txt": b"test2",
            "fetch.txt": b"https://en.wikipedia.org - ~/test.txt\r\n",
            "manifest-md5.txt": M("md5", ["data/test2.txt"], sep=" ", eol="\r\n"),
            "tagmanifest-md5.txt": M(
                "md5", ["bagit.txt", "manifest-md5.txt", "bag-info.txt", "fetch.txt"], eol="\r\n"
            ),
        },
    ),
    SuiteCase(
        "v0.97/linux-only/out-of-scope-file-paths-using-shortcut-username",
        "invalid",
        "bagit-path-unsafe",
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/bare-filename",
                    "data/text-file.txt",
                    ("3e6ffc4a8a1f38a7094e15d2356d7252", "~root/foo"),
                ],
            ),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"]),
        },
    ),
    SuiteCase(
        "v0.97/linux-only/out-of-scope-file-paths-using-shortcut-username-for-fetch",
        "invalid",
        "bagit-path-unsafe",
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "fetch.txt": b"https://en.wikipedia.org - ~root/foo\n",
            "manifest-md5.txt": M("md5", ["data/bare-filename", "data/text-file.txt"]),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt", "fetch.txt"]),
        },
    ),
    SuiteCase(
        "v0.97/valid/ISO-8859-1-encoded-tag-files",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: ISO-8859-1\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M("md5", ["data/bare-filename", "data/text-file.txt"]),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"], sep=" "),
        },
    ),
    SuiteCase(
        "v0.97/valid/UTF-16-encoded-tag-files",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_16,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-16\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": TEXT_17,
            "tagmanifest-md5.txt": TEXT_18,
        },
    ),
    SuiteCase(
        "v0.97/valid/bag-in-a-bag",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.97\r\nTag-File-Character-Encoding: UTF-8",
            "data/bag/bag-info.txt": TEXT_5,
            "data/bag/bagit.txt": b"BagIt-Version: 0.96\r\nTag-File-Character-Encoding: UTF-8",
            "data/bag/data/dir1/test3.txt": b"test3",
            "data/bag/data/dir2/dir3/test5.txt": b"test5",
            "data/bag/data/dir2/test4.txt": b"test4",
            "data/bag/data/test1.txt": b"test1",
            "data/bag/data/test2.txt": b"test2",
            "data/bag/manifest-md5.txt": TEXT_6,
            "data/bag/tagmanifest-md5.txt": TEXT_7,
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/bag/bag-info.txt",
                    "data/bag/bagit.txt",
                    "data/bag/data/dir1/test3.txt",
                    "data/bag/data/dir2/dir3/test5.txt",
                    "data/bag/data/dir2/test4.txt",
                    "data/bag/data/test1.txt",
                    "data/bag/data/test2.txt",
                    "data/bag/manifest-md5.txt",
                    "data/bag/tagmanifest-md5.txt",
                ],
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"], eol="\r\n"),
        },
    ),
    SuiteCase(
        "v0.97/valid/bag-with-encoded-names",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.97\r\nTag-File-Character-Encoding: UTF-8",
            "data/%7Edir2/dir3/test5.txt": b"test5",
            "data/%7Edir2/test4.txt": b"test4",
            "data/%7Etest1.txt": b"test1",
            "data/%test2.txt": b"test2",
            "data/dir1/~test3.txt": b"test3",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/~test3.txt",
                    "data/%7Edir2/dir3/test5.txt",
                    "data/%7Edir2/test4.txt",
                    "data/%7Etest1.txt",
                    "data/%test2.txt",
                ],
                sep=" ",
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M("md5", ["bagit.txt", "manifest-md5.txt", "bag-info.txt"], eol="\r\n"),
        },
    ),
    SuiteCase(
        "v0.97/valid/bag-with-escapable-characters",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.97\r\nTag-File-Character-Encoding: UTF-8",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test file with spaces.txt": b"test file with spaces",
            "data/test1.txt": b"test1",
            "data/test2.txt": b"test2",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                    "data/test1.txt",
                    "data/test2.txt",
                    "data/test file with spaces.txt",
                ],
                sep=" ",
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M("md5", ["bagit.txt", "manifest-md5.txt", "bag-info.txt"], eol="\r\n"),
        },
    ),
    SuiteCase(
        "v0.97/valid/bag-with-leading-dot-slash-in-manifest",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.97\r\nTag-File-Character-Encoding: UTF-8",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test1.txt": b"test1",
            "data/test2.txt": b"test2",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                    "data/test1.txt",
                    ("ad0234829205b9033196ba818f7a872b", "./data/test2.txt"),
                ],
                sep=" ",
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M("md5", ["bagit.txt", "manifest-md5.txt", "bag-info.txt"], eol="\r\n"),
        },
    ),
    SuiteCase(
        "v0.97/valid/bag-with-space",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.97\r\nTag-File-Character-Encoding: UTF-8",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test 1.txt": b"test1",
            "data/test2.txt": b"test2",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                    "data/test 1.txt",
                    "data/test2.txt",
                ],
                sep=" ",
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M("md5", ["bagit.txt", "manifest-md5.txt", "bag-info.txt"], eol="\r\n"),
        },
    ),
    SuiteCase(
        "v0.97/valid/basic-bag",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M("md5", ["data/bare-filename", "data/text-file.txt"]),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"], sep=" "),
        },
    ),
    SuiteCase(
        "v0.97/valid/duplicate-metadata-entries",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_19,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M("md5", ["data/bare-filename", "data/text-file.txt"]),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"], sep=" "),
        },
    ),
    SuiteCase(
        "v0.97/valid/holey-bag",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_5,
            "bagit.txt": b"BagIt-Version: 0.97\r\nTag-File-Character-Encoding: UTF-8",
            "data/dir1/test3.txt": b"test3",
            "data/dir2/dir3/test5.txt": b"test5",
            "data/dir2/test4.txt": b"test4",
            "data/test 1.txt": b"test1",
            "data/test2.txt": b"test2",
            "fetch.txt": TEXT_8,
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/dir1/test3.txt",
                    "data/dir2/dir3/test5.txt",
                    "data/dir2/test4.txt",
                    "data/test 1.txt",
                    "data/test2.txt",
                ],
                sep=" ",
                eol="\r\n",
            ),
            "tagmanifest-md5.txt": M("md5", ["bagit.txt", "manifest-md5.txt", "bag-info.txt"], eol="\r\n"),
        },
    ),
    SuiteCase(
        "v0.97/valid/minimal-bag",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_20,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bag-info.txt": b"Payload-Oxum: 58.2\n",
            "data/bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "data/manifest-md5.txt": TEXT_21,
            "data/tagmanifest-md5.txt": TEXT_22,
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/bag-info.txt",
                    "data/bagit.txt",
                    "data/manifest-md5.txt",
                    "data/tagmanifest-md5.txt",
                    "data/data/bare-filename",
                    "data/data/text-file.txt",
                ],
            ),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"], sep=" "),
        },
    ),
    SuiteCase(
        "v0.97/valid/uncommon-metadata-separators",
        "valid",
        None,
        {
            "bag-info.txt": TEXT_23,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/README": TEXT_24,
            "manifest-sha224.txt": M("sha224", ["data/README"]),
            "tagmanifest-sha224.txt": M(
                "sha224", ["bagit.txt", "bag-info.txt", "manifest-sha224.txt"], sep=" "
            ),
        },
    ),
    SuiteCase(
        "v0.97/warning/duplicate-file-with-different-case",
        "warning",
        "bagit-name-collision",
        {
            "bag-info.txt": TEXT_25,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/hello.txt": b"hello\n",
            "manifest-sha512.txt": M(
                "sha512",
                [
                    "data/hello.txt",
                    (
                        "e7c22b994c59d9cf2b48e549b1e24666636045930d3da7c1acb299d1c3b7f931f94aae41edda2c2b207a36e10f8bcb8d45223e54878f5b316e7ce3b6bc019629",
                        "data/HELLO.txt",
                    ),
                ],
            ),
            "tagmanifest-sha512.txt": M(
                "sha512", ["bag-info.txt", "bagit.txt", "manifest-sha512.txt"], sep=" "
            ),
        },
    ),
    SuiteCase(
        "v0.97/warning/made-with-md5sum-tools",
        "warning",
        "bagit-path-md5sum-marker",
        {
            "bag-info.txt": TEXT_25,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/hello.txt": b"hello\n",
            "manifest-md5.txt": M("md5", [("b1946ac92492d2347c6235b4d2611184", "*data/hello.txt")], sep=" "),
            "tagmanifest-md5.txt": M(
                "md5",
                [
                    ("9717845c1babdef11da92c40901e67bf", "*bag-info.txt"),
                    ("9e5ad981e0d29adc278f6a294b8c2aca", "*bagit.txt"),
                    ("abd579975ec7f694887e10af6e44ff72", "*manifest-md5.txt"),
                ],
                sep=" ",
            ),
        },
    ),
    SuiteCase(
        "v0.97/warning/relative-path",
        "warning",
        "bagit-path-noncanonical",
        {
            "bag-info.txt": TEXT_25,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/hello.txt": b"hello\n",
            "manifest-sha512.txt": M(
                "sha512",
                [
                    (
                        "e7c22b994c59d9cf2b48e549b1e24666636045930d3da7c1acb299d1c3b7f931f94aae41edda2c2b207a36e10f8bcb8d45223e54878f5b316e7ce3b6bc019629",
                        "./data/hello.txt",
                    )
                ],
            ),
            "tagmanifest-sha512.txt": M(
                "sha512", ["bag-info.txt", "bagit.txt", "manifest-sha512.txt"], sep=" "
            ),
        },
    ),
    SuiteCase(
        "v0.97/warning/same-filename-listed-twice-with-different-normalization",
        "warning",
        "bagit-name-collision",
        {
            "README": TEXT_26,
            "bagit.txt": b"BagIt-Version: 0.96\nTag-File-Character-Encoding: UTF-8\n",
            "data/N\xfa\xf1ez": b"",
            "manifest-sha512.txt": M(
                "sha512",
                [
                    (
                        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
                        "data/Nu\u0301n\u0303ez",
                    ),
                    "data/N\xfa\xf1ez",
                ],
            ),
            "tagmanifest-sha512.txt": M("sha512", ["manifest-sha512.txt", "bagit.txt"]),
        },
    ),
    SuiteCase(
        "v0.97/warning/same-filename-listed-twice-with-the-same-hash",
        "warning",
        "bagit-manifest-duplicate",
        {
            "bag-info.txt": TEXT_27,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/README": TEXT_28,
            "debug": TEXT_29,
            "manifest-sha256.txt": M("sha256", ["data/README", "data/README"]),
            "manifest-sha512.txt": M("sha512", ["data/README"]),
            "tagmanifest-sha256.txt": M(
                "sha256", ["bag-info.txt", "bagit.txt", "manifest-sha256.txt", "manifest-sha512.txt"], sep=" "
            ),
            "tagmanifest-sha512.txt": M(
                "sha512", ["bag-info.txt", "bagit.txt", "manifest-sha256.txt", "manifest-sha512.txt"], sep=" "
            ),
        },
    ),
    SuiteCase(
        "v0.97/warning/special-system-files",
        "warning",
        "bagit-os-metadata-file",
        {
            "bag-info.txt": TEXT_30,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/Thumbs.db": b"",
            "manifest-sha512.txt": M(
                "sha512",
                [
                    (
                        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
                        "data/.DS_Store",
                    ),
                    "data/Thumbs.db",
                ],
            ),
            "tagmanifest-sha512.txt": M(
                "sha512", ["bag-info.txt", "bagit.txt", "manifest-sha512.txt"], sep=" "
            ),
        },
    ),
    SuiteCase(
        "v0.97/windows-only/out-of-scope-file-paths-using-absolute-path",
        "invalid",
        "bagit-path-unsafe",
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/bare-filename",
                    "data/text-file.txt",
                    ("c9a6121252634aa4d4628982de929bbb", "C:\\Windows\\System32\\setx.exe"),
                ],
            ),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"]),
        },
    ),
    SuiteCase(
        "v0.97/windows-only/out-of-scope-file-paths-using-absolute-path-for-fetch",
        "invalid",
        "bagit-path-unsafe",
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "fetch.txt": b"https://en.wikipedia.org - C:\\Windows\\System32\\setx.exe\n",
            "manifest-md5.txt": M("md5", ["data/bare-filename", "data/text-file.txt"]),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt", "fetch.txt"]),
        },
    ),
    SuiteCase(
        "v0.97/windows-only/out-of-scope-file-paths-using-shortcut",
        "invalid",
        "bagit-path-unsafe",
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/bare-filename",
                    "data/text-file.txt",
                    ("c9a6121252634aa4d4628982de929bbb", "%HomeDrive%\\Windows\\System32\\setx.exe"),
                ],
            ),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"]),
        },
    ),
    SuiteCase(
        "v0.97/windows-only/out-of-scope-file-paths-using-shortcut-for-fetch",
        "invalid",
        "bagit-path-unsafe",
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "fetch.txt": TEXT_31,
            "manifest-md5.txt": M("md5", ["data/bare-filename", "data/text-file.txt"]),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt", "fetch.txt"]),
        },
    ),
    SuiteCase(
        "v0.97/windows-only/out-of-scope-file-paths-using-unc",
        "invalid",
        "bagit-path-unsafe",
        {
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "manifest-md5.txt": M(
                "md5",
                [
                    "data/bare-filename",
                    "data/text-file.txt",
                    ("c9a6121252634aa4d4628982de929bbb", "\\\\?\\UNC\\server\\Windows\\System32\\setx.exe"),
                ],
            ),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"]),
        },
    ),
    SuiteCase(
        "v0.97/windows-only/out-of-scope-file-paths-using-unc-for-fetch",
        "invalid",
        "bagit-path-unsafe",
        {
            ".-verifyvalid-null.txt": TEXT_32,
            "bag-info.txt": TEXT_9,
            "bagit.txt": b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n",
            "data/bare-filename": b"Fri Feb 26 14:26:03 EST 2016\n",
            "data/text-file.txt": b"Fri Feb 26 14:26:16 EST 2016\n",
            "fetch.txt": TEXT_33,
            "manifest-md5.txt": M("md5", ["data/bare-filename", "data/text-file.txt"]),
            "tagmanifest-md5.txt": M("md5", ["bag-info.txt", "bagit.txt", "manifest-md5.txt"]),
        },
    ),
    SuiteCase(
        "v1.0/invalid/bagit-with-invalid-whitespace",
        "invalid",
        "bagit-declaration-invalid",
        {
            "bag-info.txt": TEXT_34,
            "bagit.txt": b"BagIt-Version : 1.0\nTag-File-Character-Encoding : UTF-8\n",
            "data/README": TEXT_35,
            "manifest-sha256.txt": M("sha256", ["data/README"]),
            "manifest-sha512.txt": M("sha512", ["data/README"]),
            "tagmanifest-sha256.txt": M(
                "sha256", ["bag-info.txt", "bagit.txt", "manifest-sha256.txt", "manifest-sha512.txt"], sep=" "
            ),
            "tagmanifest-sha512.txt": M(
                "sha512", ["bag-info.txt", "bagit.txt", "manifest-sha256.txt", "manifest-sha512.txt"], sep=" "
            ),
        },
    ),
    SuiteCase(
        "v1.0/invalid/notAllManifestsListAllFiles",
        "invalid",
        "bagit-payload-unlisted",
        {
            "bagit.txt": b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
            "data/hello.txt": b"hello\n",
            "data/missingFromManifest.txt": TEXT_36,
            "manifest-sha512.txt": M("sha512", ["data/hello.txt"]),
            "tagmanifest-sha512.txt": M("sha512", ["bagit.txt", "manifest-sha512.txt"]),
        },
    ),
    SuiteCase(
        "v1.0/invalid/same-filename-listed-twice-with-different-hashes",
        "invalid",
        "bagit-version-invalid",
        {
            "bag-info.txt": TEXT_14,
            "bagit.txt": b"BagIt-Version: 1.0 \nTag-File-Character-Encoding: UTF-8\n",
            "data/README": TEXT_15,
            "manifest-sha256.txt": M(
                "sha256",
                [
                    "data/README",
                    ("deadbeef7f08a20a04d909e5a6573f87cdf8c2e44581efa16f69e9b59632f1ab", "data/README"),
                ],
            ),
            "manifest-sha512.txt": M("sha512", ["data/README"]),
            "tagmanifest-sha256.txt": M(
                "sha256",
                [
                    "bag-info.txt",
                    ("e91f941be5973ff71f1dccbdd1a32d598881893a7f21be516aca743da38b1689", "bagit.txt"),
                    "manifest-sha256.txt",
                    "manifest-sha512.txt",
                ],
                sep=" ",
            ),
            "tagmanifest-sha512.txt": M(
                "sha512",
                [
                    "bag-info.txt",
                    (
                        "418dcfbe17d5f4b454b18630be795462cf7da4ceb6313afa49451aa2568e41f7ca3d34cf0280c7d056dc5681a70c37586aa1755620520b9198eede905ba2d0f6",
                        "bagit.txt",
                    ),
                    "manifest-sha256.txt",
                    "manifest-sha512.txt",
                ],
                sep=" ",
            ),
        },
    ),
    SuiteCase(
        "v1.0/invalid/same-filename-listed-twice-with-the-same-hash",
        "invalid",
        "bagit-manifest-duplicate",
        {
            "bag-info.txt": TEXT_27,
            "bagit.txt": b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
            "data/README": TEXT_28,
            "debug": TEXT_29,
            "manifest-sha256.txt": M("sha256", ["data/README", "data/README"]),
            "manifest-sha512.txt": M("sha512", ["data/README"]),
            "tagmanifest-sha256.txt": M(
                "sha256",
                [
                    "bag-info.txt",
                    ("e91f941be5973ff71f1dccbdd1a32d598881893a7f21be516aca743da38b1689", "bagit.txt"),
                    "manifest-sha256.txt",
                    "manifest-sha512.txt",
                ],
                sep=" ",
            ),
            "tagmanifest-sha512.txt": M(
                "sha512",
                [
                    "bag-info.txt",
                    (
                        "418dcfbe17d5f4b454b18630be795462cf7da4ceb6313afa49451aa2568e41f7ca3d34cf0280c7d056dc5681a70c37586aa1755620520b9198eede905ba2d0f6",
                        "bagit.txt",
                    ),
                    "manifest-sha256.txt",
                    "manifest-sha512.txt",
                ],
                sep=" ",
            ),
        },
    ),
    SuiteCase(
        "v1.0/valid/basicBag",
        "valid",
        None,
        {
            "bagit.txt": b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
            "data/hello.txt": b"hello\n",
            "manifest-sha512.txt": M("sha512", ["data/hello.txt"]),
            "tagmanifest-sha512.txt": M("sha512", ["bagit.txt", "manifest-sha512.txt"]),
        },
    ),
]
