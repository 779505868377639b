"""A minimal Windows registry hive (REGF) written from the format description, for tests that
read a host name from a dead box's SYSTEM hive: keys (nk) with fast-leaf subkey lists (lf) and
REG_SZ / REG_DWORD values (vk). Nothing here is sealbox's own code."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

_NONE = 0xFFFFFFFF


@dataclass
class Key:
    name: str
    values: dict[str, str | int] = field(default_factory=dict)
    subkeys: list[Key] = field(default_factory=list)

    def add(self, path: str, **values: str | int) -> Key:
        node = self
        for part in path.split("\\"):
            found = next((k for k in node.subkeys if k.name.lower() == part.lower()), None)
            if found is None:
                found = Key(part)
                node.subkeys.append(found)
            node = found
        node.values.update(values)
        return node


class _Bin:
    """Cells laid out in one hive bin; offsets are relative to the first bin (as REGF wants)."""

    def __init__(self) -> None:
        self.data = bytearray(b"\0" * 32)  # the hbin header, filled in at the end

    def cell(self, payload: bytes) -> int:
        size = (4 + len(payload) + 7) // 8 * 8
        offset = len(self.data)
        self.data += struct.pack("<i", -size) + payload + b"\0" * (size - 4 - len(payload))
        return offset

    def reserve(self, length: int) -> int:
        return self.cell(b"\0" * length)

    def fill(self, offset: int, payload: bytes) -> None:
        self.data[offset + 4 : offset + 4 + len(payload)] = payload


def _value(b: _Bin, name: str, value: str | int) -> int:
    raw_name = name.encode("ascii")
    if isinstance(value, int):
        data_type, data = 4, struct.pack("<I", value)
        size, offset = 4 | 0x80000000, struct.unpack("<I", data)[0]  # small data sits in the offset
    else:
        data_type, data = 1, (value + "\0").encode("utf-16-le")
        size, offset = len(data), b.cell(data)
    vk = b"vk" + struct.pack("<HIIIHH", len(raw_name), size, offset, data_type, 1, 0) + raw_name
    return b.cell(vk)


def _key(b: _Bin, key: Key, parent: int, root: bool = False) -> int:
    raw_name = key.name.encode("ascii")
    offset = b.reserve(76 + len(raw_name))
    children = [_key(b, child, offset) for child in key.subkeys]
    subkey_list = _NONE
    if children:
        leaf = b"lf" + struct.pack("<H", len(children))
        for child, node in zip(key.subkeys, children, strict=True):
            hint = child.name.encode("ascii")[:4].ljust(4, b"\0")
            leaf += struct.pack("<I", node) + hint
        subkey_list = b.cell(leaf)
    value_offsets = [_value(b, n, v) for n, v in key.values.items()]
    value_list = b.cell(b"".join(struct.pack("<I", v) for v in value_offsets)) if value_offsets else _NONE
    flags = 0x20 | (0x2C if root else 0)
    nk = b"nk" + struct.pack(
        "<HQ4s13I4sHH",
        flags, 0, b"\0" * 4, parent, len(children), 0, subkey_list, _NONE, len(value_offsets),
        value_list, _NONE, _NONE, 0, 0, 0, 0, b"\0" * 4, len(raw_name), 0,
    ) + raw_name  # fmt: skip
    b.fill(offset, nk)
    return offset


def build_hive(root: Key, file_name: str = "SYSTEM") -> bytes:
    """The bytes of a hive holding `root` and everything under it."""
    b = _Bin()
    root_offset = _key(b, root, _NONE, root=True)
    size = (len(b.data) + 4095) // 4096 * 4096
    # The rest of the bin is one free cell (positive size), as Windows leaves it.
    free = size - len(b.data)
    if free:
        b.data += struct.pack("<i", free) + b"\0" * (free - 4)
    b.data[0:32] = b"hbin" + struct.pack("<III", 0, size, 0) + b"\0" * 16
    header = bytearray(4096)
    struct.pack_into("<4sIIQIIIIII", header, 0, b"regf", 1, 1, 0, 1, 5, 0, 1, root_offset, size)
    struct.pack_into("<I", header, 44, 1)  # clustering factor
    name = file_name.encode("utf-16-le")[:64]
    header[48 : 48 + len(name)] = name
    checksum = 0
    for (word,) in struct.iter_unpack("<I", bytes(header[:508])):
        checksum ^= word
    struct.pack_into("<I", header, 508, checksum)
    return bytes(header) + bytes(b.data)


def system_hive(computer_name: str, current: int = 1) -> bytes:
    """A SYSTEM hive whose current control set names the computer `computer_name`."""
    root = Key("ROOT")
    root.add("Select", Current=current, Default=current)
    root.add(f"ControlSet{current:03d}\\Control\\ComputerName\\ComputerName", ComputerName=computer_name)
    other = 2 if current == 1 else 1
    root.add(f"ControlSet{other:03d}\\Control\\ComputerName\\ComputerName", ComputerName="STALE-NAME")
    return build_hive(root)
