"""The private noatime mount namespace: which mounts it remounts, read from mountinfo."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from manifest.osio.mountns import Mount, mounts, mounts_for, pseudo_devices

if TYPE_CHECKING:
    from pathlib import Path

MOUNTINFO = (
    b"22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    b"30 22 0:25 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw\n"
    b"41 22 0:40 / /var/log rw,noexec,relatime shared:9 - ext4 /dev/vdb rw\n"
    b"42 41 0:41 / /var/log/audit ro,relatime shared:10 - ext4 /dev/vdc ro\n"
    b"43 22 0:42 / /mnt/with\\040space rw,noatime shared:11 - ext4 /dev/vdd rw\n"
)


def test_mountinfo_points_and_options_unescaped() -> None:
    table = mounts(MOUNTINFO)
    assert [m.point for m in table] == [b"/", b"/dev/shm", b"/var/log", b"/var/log/audit", b"/mnt/with space"]
    assert table[1].options == frozenset({"rw", "nosuid", "nodev"})


def test_the_mount_holding_a_path_and_every_mount_below_it() -> None:
    table = mounts(MOUNTINFO)

    def points(*paths: bytes) -> list[bytes]:
        return [m.point for m in mounts_for(list(paths), table)]

    assert points(b"/var/log") == [b"/var/log", b"/var/log/audit"]
    assert points(b"/var/log/syslog") == [b"/var/log"]
    assert points(b"/var/logs-old/x") == [b"/"]  # a shared prefix is not a parent directory
    assert points(b"/home/clerk", b"/dev/shm/case/") == [b"/", b"/dev/shm"]
    assert points(b"/mnt/with space/a") == [b"/mnt/with space"]
    assert mounts_for([b"/x"], [Mount(b"/", frozenset())]) == [Mount(b"/", frozenset())]


def test_filesystem_types_with_any_number_of_optional_fields(tmp_path: Path) -> None:
    info = (
        b"22 1 254:0 / / rw,relatime shared:1 master:3 - ext4 /dev/vda rw\n"
        b"23 22 0:5 / /proc rw,nosuid,nodev,noexec - proc proc rw\n"
        b"24 22 0:6 / /dev/shm rw shared:4 - tmpfs tmpfs rw\n"
    )
    assert [m.fstype for m in mounts(info)] == ["ext4", "proc", "tmpfs"]
    (tmp_path / "mountinfo").write_bytes(info)
    # Only the pseudo filesystem's device; /dev/shm holds stored files like any disk.
    assert pseudo_devices(tmp_path / "mountinfo") == {os.stat("/proc").st_dev}
    assert pseudo_devices(tmp_path / "missing") == frozenset()
