"""Artifact definitions and profiles as TOML data: loading, validation, selection.

An artifact says *what* to preserve (path globs, limits, tags); a profile is a named list of
artifacts (by name or by tag). Where the paths are found on a given root is `collectors.expand`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collectors.kinds import KINDS
from manifest.errors import UsageError

if TYPE_CHECKING:
    from collectors.kind import ArtifactKind

BUILTIN_ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
BUILTIN_PROFILES = Path(__file__).resolve().parent / "profiles"

OSES = ("linux", "macos", "windows")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_WINDOWS_ABS = re.compile(r"^[A-Za-z]:\\")
_ARTIFACT_FIELDS = {
    "name",
    "description",
    "os",
    "kind",
    "paths",
    "excludes",
    "max_file_size",
    "max_depth",
    "tags",
    "sections",
}
_PROFILE_FIELDS = {"name", "description", "os", "artifacts", "tags"}


class DefinitionError(UsageError):
    """An artifact or profile file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Artifact:
    """One thing to preserve. The first tag is its category: items say `<category>/<name>`."""

    name: str
    description: str
    os: tuple[str, ...]
    kind: str
    paths: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    max_file_size: int | None = None
    max_depth: int | None = None
    tags: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()
    origin: str = ""

    @property
    def kind_of(self) -> ArtifactKind:
        """Its registered kind (checked when the definition was parsed)."""
        return KINDS[self.kind]

    @property
    def collector(self) -> str:
        return f"{self.tags[0] if self.tags else self.kind}/{self.name}"

    def applies_to(self, os_name: str | None) -> bool:
        return os_name is None or os_name in self.os

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "os": list(self.os),
            "kind": self.kind,
            "collector": self.collector,
            "tags": list(self.tags),
            "origin": self.origin,
        }
        out.update(self.kind_of.describe(self))
        return out


@dataclass(frozen=True)
class Profile:
    """A named selection of artifacts: listed names first, then every artifact with one of `tags`."""

    name: str
    description: str
    os: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    origin: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "os": list(self.os),
            "artifacts": list(self.artifacts),
            "tags": list(self.tags),
            "origin": self.origin,
        }


@dataclass(frozen=True)
class Selection:
    """What a profile means on one target OS: the artifacts to run and those that do not apply."""

    profile: Profile
    os: str | None
    artifacts: list[Artifact]
    not_applicable: list[Artifact] = field(default_factory=list)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(f"{path}: not valid TOML ({exc})", "fix the syntax at the line given") from exc
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot be read ({exc.strerror})") from exc


class FieldCheck:
    """Field checks that all report `<file>: <where> field '<name>': <problem>`."""

    def __init__(self, path: Path, where: str, table: dict[str, Any]) -> None:
        self.path, self.where, self.table = path, where, table

    def fail(self, name: str, problem: str) -> DefinitionError:
        return DefinitionError(
            f"{self.path}: {self.where} field '{name}': {problem}",
            "see `sealbox artifacts show NAME` for a valid definition",
        )

    def unknown(self, allowed: set[str]) -> None:
        for key in self.table:
            if key not in allowed:
                raise self.fail(key, f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def string(self, name: str, *, required: bool = True, pattern: re.Pattern[str] | None = None) -> str:
        value = self.table.get(name)
        if value is None:
            if required:
                raise self.fail(name, "missing")
            return ""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, "must be a non-empty string")
        if pattern is not None and not pattern.match(value):
            raise self.fail(name, f"'{value}' must be lowercase letters, digits, '.', '_' or '-'")
        return value

    def strings(self, name: str, *, choices: tuple[str, ...] | None = None) -> tuple[str, ...]:
        value = self.table.get(name, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(name, "must be a list of non-empty strings")
        if choices is not None:
            for v in value:
                if v not in choices:
                    raise self.fail(name, f"'{v}' is not one of {', '.join(choices)}")
        return tuple(value)

    def integer(self, name: str, minimum: int) -> int | None:
        value = self.table.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(name, f"must be an integer >= {minimum}")
        return value

    def path_glob(self, path: str, oses: tuple[str, ...]) -> None:
        """A path glob of an artifact for `oses`: absolute (or from a home), of their style."""
        _check_path(self, path, oses)


def _check_path(check: FieldCheck, path: str, oses: tuple[str, ...]) -> None:
    windows = _WINDOWS_ABS.match(path) is not None or path.startswith("~\\")
    posix = path.startswith(("/", "~/"))
    if not (windows or posix) and path != "~":
        raise check.fail("paths", f"'{path}' must start with '/', '~/', 'C:\\' or '~\\'")
    if windows and set(oses) - {"windows"}:
        raise check.fail("paths", f"'{path}' is a Windows path but os includes {', '.join(oses)}")
    if posix and "windows" in oses:
        raise check.fail("paths", f"'{path}' is a POSIX path but os includes windows")
    parts = re.split(r"[\\/]", path)
    if ".." in parts or "." in parts:
        raise check.fail("paths", f"'{path}' must not contain '.' or '..' components")
    if "~" in parts[1:]:
        raise check.fail("paths", f"'{path}': '~' is only allowed as the first component")


def parse_artifact(path: Path, index: int, table: Any) -> Artifact:
    """One `[[artifact]]` table, checked field by field."""
    if not isinstance(table, dict):
        raise DefinitionError(f"{path}: artifact #{index + 1} is not a table")
    label = table.get("name") if isinstance(table.get("name"), str) else f"#{index + 1}"
    check = FieldCheck(path, f"artifact '{label}'", table)
    check.unknown(_ARTIFACT_FIELDS)
    name = check.string("name", pattern=_NAME)
    description = check.string("description")
    oses = check.strings("os", choices=OSES)
    if not oses:
        raise check.fail("os", "missing (list at least one of linux, macos, windows)")
    kind = check.string("kind")
    kind_of = KINDS.get(kind)
    if kind_of is None:
        raise check.fail("kind", f"'{kind}' is not one of {', '.join(KINDS.names())}")
    paths = check.strings("paths")
    sections = kind_of.check(check, paths, oses)
    return Artifact(
        name=name,
        description=description,
        os=oses,
        kind=kind,
        paths=paths,
        excludes=check.strings("excludes"),
        max_file_size=check.integer("max_file_size", 1),
        max_depth=check.integer("max_depth", 0),
        tags=check.strings("tags"),
        sections=sections,
        origin=str(path),
    )


def load_artifact_file(path: Path) -> list[Artifact]:
    doc = _read_toml(path)
    for key in doc:
        if key != "artifact":
            raise DefinitionError(
                f"{path}: top-level field '{key}': unknown", "artifact files hold only [[artifact]] tables"
            )
    tables = doc.get("artifact", [])
    if not isinstance(tables, list):
        raise DefinitionError(f"{path}: field 'artifact': must be an array of tables ([[artifact]])")
    return [parse_artifact(path, i, t) for i, t in enumerate(tables)]


def load_profile_file(path: Path) -> Profile:
    doc = _read_toml(path)
    check = FieldCheck(path, "profile", doc)
    check.unknown(_PROFILE_FIELDS)
    profile = Profile(
        name=check.string("name", pattern=_NAME),
        description=check.string("description"),
        os=check.strings("os", choices=OSES),
        artifacts=check.strings("artifacts"),
        tags=check.strings("tags"),
        origin=str(path),
    )
    if not profile.artifacts and not profile.tags:
        raise check.fail("artifacts", "missing (a profile lists artifacts, tags, or both)")
    return profile


@dataclass
class Catalog:
    """Every known artifact and profile: the built-ins, then each `--artifacts-dir` in order.

    A user directory holds artifact files (`*.toml`) and optionally `profiles/*.toml`; a
    definition there replaces a built-in of the same name, so a site can tune a default.
    """

    artifacts: dict[str, Artifact]
    profiles: dict[str, Profile]

    @classmethod
    def load(cls, extra_dirs: list[Path] | tuple[Path, ...] = ()) -> Catalog:
        layers = [(BUILTIN_ARTIFACTS, BUILTIN_PROFILES)]
        for d in extra_dirs:
            if not d.is_dir():
                raise UsageError(
                    f"artifacts directory {d} does not exist", "give a directory of *.toml files"
                )
            layers.append((d, d / "profiles"))
        artifacts: dict[str, Artifact] = {}
        profiles: dict[str, Profile] = {}
        for art_dir, prof_dir in layers:
            layer_art: dict[str, Artifact] = {}
            for path in sorted(art_dir.glob("*.toml")):
                for art in load_artifact_file(path):
                    if art.name in layer_art:
                        raise DefinitionError(
                            f"{path}: artifact '{art.name}' field 'name': already defined in "
                            f"{layer_art[art.name].origin}",
                            "give each artifact a unique name",
                        )
                    layer_art[art.name] = art
            artifacts.update(layer_art)
            layer_prof: dict[str, Profile] = {}
            for path in sorted(prof_dir.glob("*.toml")) if prof_dir.is_dir() else []:
                prof = load_profile_file(path)
                if prof.name in layer_prof:
                    raise DefinitionError(
                        f"{path}: profile field 'name': '{prof.name}' already defined in "
                        f"{layer_prof[prof.name].origin}"
                    )
                layer_prof[prof.name] = prof
            profiles.update(layer_prof)
        catalog = cls(artifacts, profiles)
        catalog._check_references()
        return catalog

    def _check_references(self) -> None:
        for prof in self.profiles.values():
            for name in prof.artifacts:
                if name not in self.artifacts:
                    raise DefinitionError(
                        f"{prof.origin}: profile '{prof.name}' field 'artifacts': no artifact named '{name}'",
                        "see `sealbox artifacts list`",
                    )

    def artifact(self, name: str) -> Artifact:
        try:
            return self.artifacts[name]
        except KeyError:
            raise UsageError(f"no artifact named '{name}'", "see `sealbox artifacts list`") from None

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise UsageError(
                f"no profile named '{name}'", f"choose one of: {', '.join(sorted(self.profiles))}"
            ) from None

    def resolve(self, profile: Profile) -> list[Artifact]:
        """The profile's artifacts in order: listed names, then tag matches in catalog order."""
        chosen = [self.artifacts[n] for n in profile.artifacts]
        seen = {a.name for a in chosen}
        for art in self.artifacts.values():
            if art.name not in seen and set(art.tags) & set(profile.tags):
                chosen.append(art)
                seen.add(art.name)
        return chosen

    def select(self, profile_name: str, os_name: str | None) -> Selection:
        """What runs on a target whose OS is `os_name` (None: unknown, so everything applies)."""
        profile = self.profile(profile_name)
        chosen = self.resolve(profile)
        return Selection(
            profile,
            os_name,
            [a for a in chosen if a.applies_to(os_name)],
            [a for a in chosen if not a.applies_to(os_name)],
        )
