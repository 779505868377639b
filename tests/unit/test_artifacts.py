"""Artifact and profile definitions: validation, selection, and expansion on fixture roots."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from collectors.artifacts import BUILTIN_ARTIFACTS, BUILTIN_PROFILES, Catalog, DefinitionError
from collectors.expand import Target, glob_in_root, plan_sources, resolve_in_root, user_homes
from tests.support.layouts import build_linux_root, build_macos_root, build_windows_root

if TYPE_CHECKING:
    from pathlib import Path

VALID = """
[[artifact]]
name = "site-app-logs"
description = "Our in-house app"
os = ["linux"]
kind = "files"
paths = ["/opt/app/log"]
tags = ["logs", "site"]
"""


def test_builtin_catalog_loads_and_every_profile_resolves() -> None:
    catalog = Catalog.load()
    required = {"linux-default", "macos-default", "windows-default", "logs", "email", "minimal"}
    assert required <= set(catalog.profiles)
    for profile in catalog.profiles.values():
        assert catalog.resolve(profile), profile.name
    for art in catalog.artifacts.values():
        assert art.description and art.tags, art.name
    # The coverage the issue asks for is in the data, by the paths that name it.
    paths = {p for a in catalog.artifacts.values() for p in a.paths}
    for needed in (
        "/var/log",
        "/var/log/journal",
        "/run/log/journal",
        "/var/log/wtmp*",
        "/var/log/btmp*",
        "/var/log/lastlog",
        "/var/log/audit",
        "/var/log/auth.log*",
        "/var/log/syslog*",
        "/var/log/kern.log*",
        "/var/log/cron*",
        "/var/log/dpkg.log*",
        "/var/log/apache2",
        "/var/log/nginx",
        "~/.bash_history",
        "~/.ssh/authorized_keys",
        "~/.ssh/known_hosts",
        "/var/spool/cron",
        "/etc/passwd",
        "/etc/group",
        "/private/var/log",
        "/Library/Logs",
        "~/Library/Logs",
        "/private/var/db/diagnostics",
        "/private/var/db/uuidtext",
        "~/Library/Mail",
        "C:\\Windows\\System32\\winevt\\Logs\\*.evtx",
        "/var/mail",
        "/var/spool/mail",
        "~/mbox",
        "~/Maildir",
        "~/.local/share/evolution/mail",
    ):
        assert needed in paths, needed
    assert any("ConsoleHost_history.txt" in p for p in paths)
    assert any(p.endswith("*.pst") for p in paths) and any(p.endswith("*.msg") for p in paths)
    assert any("Thunderbird" in p for p in paths) and any(".thunderbird" in p for p in paths)


def test_profile_selection_filters_by_target_os() -> None:
    catalog = Catalog.load()
    logs_on_mac = catalog.select("logs", "macos")
    assert {a.name for a in logs_on_mac.artifacts} == {
        "macos-varlog",
        "macos-library-logs",
        "macos-user-logs",
        "macos-unified-logs",
    }
    assert all("macos" not in a.os for a in logs_on_mac.not_applicable)
    minimal_on_linux = [a.name for a in catalog.select("minimal", "linux").artifacts]
    assert minimal_on_linux[0] == "volatile-state"
    assert "linux-auth" in minimal_on_linux and "windows-event-logs" not in minimal_on_linux


def _write(d: Path, name: str, text: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    path = d / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "text", "field", "problem"),
    [
        ("unknown_field.toml", VALID + 'colour = "red"\n', "colour", "unknown field"),
        ("bad_kind.toml", VALID.replace('"files"', '"registry"'), "kind", "'registry' is not one of"),
        ("missing_paths.toml", VALID.replace('paths = ["/opt/app/log"]\n', ""), "paths", "missing"),
        ("relative_path.toml", VALID.replace("/opt/app/log", "opt/app/log"), "paths", "must start with"),
        ("dotdot_path.toml", VALID.replace("/opt/app/log", "/opt/../etc"), "paths", "'..'"),
        (
            "windows_path_linux_os.toml",
            VALID.replace("/opt/app/log", "C:\\\\App\\\\log"),
            "paths",
            "Windows path",
        ),
        ("size_is_text.toml", VALID + 'max_file_size = "big"\n', "max_file_size", "integer"),
        ("negative_depth.toml", VALID + "max_depth = -1\n", "max_depth", "integer"),
        ("bad_os.toml", VALID.replace('["linux"]', '["beos"]'), "os", "'beos'"),
        ("uppercase_name.toml", VALID.replace("site-app-logs", "Site App"), "name", "lowercase"),
        ("volatile_with_paths.toml", VALID.replace('"files"', '"volatile"'), "paths", "no paths"),
    ],
)
def test_malformed_artifact_file_names_file_and_field(
    tmp_path: Path, name: str, text: str, field: str, problem: str
) -> None:
    path = _write(tmp_path / "defs", name, text)
    with pytest.raises(DefinitionError) as err:
        Catalog.load([tmp_path / "defs"])
    message = str(err.value)
    assert str(path) in message
    assert f"field '{field}'" in message
    assert problem in message


def test_broken_toml_names_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "defs", "not_toml.toml", "[[artifact]\nname = ")
    with pytest.raises(DefinitionError, match="not valid TOML") as err:
        Catalog.load([tmp_path / "defs"])
    assert str(path) in str(err.value)


def test_duplicate_name_in_one_directory_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "defs", "a.toml", VALID)
    second = _write(tmp_path / "defs", "b.toml", VALID)
    with pytest.raises(DefinitionError, match="already defined") as err:
        Catalog.load([tmp_path / "defs"])
    assert str(second) in str(err.value)


def test_profile_naming_unknown_artifact_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "defs", "site.toml", VALID)
    prof = _write(
        tmp_path / "defs" / "profiles",
        "site.toml",
        'name = "site"\ndescription = "x"\nartifacts = ["site-app-logs", "no-such-thing"]\n',
    )
    with pytest.raises(DefinitionError, match="no artifact named 'no-such-thing'") as err:
        Catalog.load([tmp_path / "defs"])
    assert str(prof) in str(err.value) and "field 'artifacts'" in str(err.value)


def test_user_directory_adds_and_overrides(tmp_path: Path) -> None:
    _write(tmp_path / "defs", "site.toml", VALID)
    override = VALID.replace("site-app-logs", "linux-auth").replace("/opt/app/log", "/var/log/secure-site")
    _write(tmp_path / "defs", "override.toml", override)
    _write(
        tmp_path / "defs" / "profiles",
        "site.toml",
        'name = "site"\ndescription = "site logs"\ntags = ["site"]\n',
    )
    catalog = Catalog.load([tmp_path / "defs"])
    assert catalog.artifact("site-app-logs").collector == "logs/site-app-logs"
    assert catalog.artifact("linux-auth").paths == ("/var/log/secure-site",)
    assert [a.name for a in catalog.resolve(catalog.profile("site"))] == ["linux-auth", "site-app-logs"]
    assert len(catalog.artifacts) == len(Catalog.load().artifacts) + 1


def test_linux_homes_come_from_passwd_home_and_root(tmp_path: Path) -> None:
    root, _ = build_linux_root(tmp_path)
    homes = user_homes(Target.at(root), "linux")
    # daemon's /usr/sbin and nobody's /nonexistent do not exist in the image: not homes.
    assert homes == [[b"home", b"alice"], [b"root"], [b"srv", b"svc"]]


def test_symlinks_resolve_inside_the_root_never_on_this_machine(tmp_path: Path) -> None:
    root, _ = build_linux_root(tmp_path)
    broot = os.fsencode(root)
    assert resolve_in_root(broot, [b"etc", b"localtime"]) == [
        b"usr",
        b"share",
        b"zoneinfo",
        b"Europe",
        b"Berlin",
    ]
    # /var/log/escape -> /etc/shadow: the root's own /etc/shadow, not this machine's.
    assert resolve_in_root(broot, [b"var", b"log", b"escape"]) == [b"etc", b"shadow"]
    (root / "loop").symlink_to("loop")
    assert resolve_in_root(broot, [b"loop"]) is None
    (root / "up").symlink_to("../../../../../../etc")
    assert resolve_in_root(broot, [b"up", b"passwd"]) == [b"etc", b"passwd"]


def test_macos_var_symlink_is_followed_within_the_root(tmp_path: Path) -> None:
    root, _ = build_macos_root(tmp_path)
    target = Target.at(root)
    assert target.os == "macos"
    # A user definition that says /var/log reaches the physical /private/var/log.
    assert glob_in_root(target.root, [], [b"var", b"log", b"*.log"], False) == [
        [b"private", b"var", b"log", b"system.log"]
    ]


def test_windows_names_match_case_insensitively_and_junctions_are_not_homes(tmp_path: Path) -> None:
    root, _ = build_windows_root(tmp_path)
    target = Target.at(root)
    assert target.os == "windows"
    assert user_homes(target, "windows") == [[b"Users", b"alice"]]
    found = glob_in_root(target.root, [], [b"WINDOWS", b"INF", b"SetupAPI*.log"], True)
    assert found == [[b"Windows", b"inf", b"setupapi.dev.log"]]


def test_plan_puts_nested_sources_first_and_excludes_them_from_the_parent(tmp_path: Path) -> None:
    root, _ = build_linux_root(tmp_path)
    catalog = Catalog.load()
    plan = plan_sources(catalog.select("linux-default", "linux").artifacts, Target.at(root))
    originals = [s.original for s in plan.sources]
    varlog = originals.index(b"/var/log")
    for inner in (b"/var/log/journal", b"/var/log/audit", b"/var/log/auth.log", b"/var/log/apache2"):
        assert originals.index(inner) < varlog
        assert inner.decode() in plan.sources[varlog].excludes
    assert len(originals) == len(set(originals))
    assert all(s.path.startswith(os.fsencode(root)) for s in plan.sources)
    assert plan.notes["linux-evolution"] == "nothing found"


def test_plan_applies_the_smaller_size_limit(tmp_path: Path) -> None:
    root, _ = build_linux_root(tmp_path)
    _write(
        tmp_path / "defs",
        "limited.toml",
        VALID.replace("/opt/app/log", "/var/log/syslog") + "max_file_size = 100\n",
    )
    catalog = Catalog.load([tmp_path / "defs"])
    art = catalog.artifact("site-app-logs")
    assert plan_sources([art], Target.at(root), max_file_size=10).sources[0].max_file_size == 10
    assert plan_sources([art], Target.at(root), max_file_size=10**6).sources[0].max_file_size == 100
    assert plan_sources([art], Target.at(root)).sources[0].max_file_size == 100


def test_builtin_definition_files_are_the_packaged_ones() -> None:
    assert sorted(p.name for p in BUILTIN_ARTIFACTS.glob("*.toml")) == [
        "email.toml",
        "linux.toml",
        "macos.toml",
        "volatile.toml",
        "windows.toml",
    ]
    assert len(list(BUILTIN_PROFILES.glob("*.toml"))) >= 6
