"""The test harness every test may import: prerequisites, the CLI as a subprocess, paths."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
ASSETS = REPO / "tests" / "assets"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NOBODY = 65534
TESTS = REPO / "tests"
KINDS = ("unit", "cli", "system")  # the folders of tests/, each its marker
_WORDS = re.compile(r"[()]|[^\s()]+")
_TREES: dict[Path, Path] = {}


def kind_of(path: Path) -> str | None:
    """`unit`, `cli` or `system` for a path inside that folder of tests/, else None."""
    try:
        first = Path(path).resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return None
    return first if first in KINDS else None


def excluded_by(markexpr: str, kind: str) -> bool:
    """Whether `-m markexpr` deselects every test of folder `kind`. Decided only for expressions
    made of folder markers alone (`unit`, `not system`, `unit or cli`); anything else: False, and
    pytest's own deselection decides test by test."""
    words = _WORDS.findall(markexpr)
    if not words or not set(words) <= {*KINDS, "and", "or", "not", "(", ")"}:
        return False
    # Only the whitelisted words above reach eval: marker names as booleans and the operators.
    try:
        return not eval(" ".join(words), {"__builtins__": {}}, {k: k == kind for k in KINDS})
    except SyntaxError:  # `-m "unit and"`: pytest reports the expression itself
        return False


def require(condition: bool, why: str) -> None:
    """Skip locally when a prerequisite is missing; in CI a missing prerequisite is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {why}")
    pytest.skip(why)


def require_tool(name: str) -> str:
    """A command on PATH, or installed beside this Python (the venv's bin, not always on PATH)."""
    path = shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))
    require(path is not None, f"{name} is not installed")
    return path or name


def require_root() -> None:
    require(os.geteuid() == 0, "needs root")


def clear_flags(path: Path) -> None:
    """Drop immutable/append-only flags so pytest can remove sealed bundles."""
    if path.exists() and shutil.which("chattr") and os.geteuid() == 0:
        subprocess.run(["chattr", "-R", "-i", "-a", str(path)], capture_output=True, check=False)
    if path.exists():
        for d in [path, *(p for p in path.rglob("*") if p.is_dir() and not p.is_symlink())]:
            d.chmod(0o755)


class Cli:
    """Runs `python -m agent` from this checkout with its own SEALBOX_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "SEALBOX_HOME": str(home), "PYTHONPATH": str(REPO)}
        self.env.pop("COLUMNS", None)

    def __call__(
        self,
        *args: str | os.PathLike[str],
        input: str | None = None,
        check: bool = False,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "agent", *map(str, args)],
            capture_output=True,
            text=True,
            env=self.env,
            input=input,
            timeout=timeout,
            cwd=REPO,
            errors="replace",
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"sealbox {' '.join(map(str, args))} exited {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc


def _world_searchable(path: Path) -> bool:
    """Whether user nobody can reach `path`: every directory from / down to it is o+x."""
    return all(os.stat(p).st_mode & 0o001 for p in (path, *path.parents))


def _link_or_copy(src: str, dst: str) -> str:
    """Hard-link a world-readable file (fast), otherwise copy it and make the copy readable (never
    change the original's mode)."""
    if os.stat(src).st_mode & 0o004:
        try:
            os.link(src, dst)
            return dst
        except OSError:
            pass
    shutil.copy2(src, dst)
    os.chmod(dst, 0o644)
    return dst


def unprivileged_tree(repo: Path = REPO) -> Path:
    """A world-readable copy of everything `python -m agent` imports: sealbox's own packages from
    `repo` and the third-party packages of this interpreter. User `nobody` runs sealbox from it
    with PYTHONPATH=tree, whatever the modes of the checkout's parents (a clone in /root, 0700)
    or of the interpreter's site-packages. Made once per repo, removed at exit."""
    if repo in _TREES:
        return _TREES[repo]
    import atexit
    import sysconfig
    import tempfile

    listing = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, importlib, agent.cli; "
            "[importlib.import_module(m) for m in set(agent.cli.COMMAND_MODULES.values())]; "
            "print('\\n'.join(m.__file__ for m in list(sys.modules.values()) "
            "if getattr(m, '__file__', None)))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
    ).stdout.splitlines()
    libs = {repo, *(Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib"))}
    tops = {
        lib / Path(name).relative_to(lib).parts[0]
        for name in listing
        for lib in libs
        if Path(name).is_relative_to(lib)
    }
    # Commands import some packages only when they run (structlog when an event is logged):
    # importing the command modules does not see those, the installed dependencies do.
    tops |= {lib / top for top in _dependency_tops() for lib in libs if (lib / top).exists()}
    tree = Path(tempfile.mkdtemp(prefix="sealbox-nobody-"))
    for top in tops:
        if top.is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(top, tree / top.name, copy_function=_link_or_copy, ignore=ignore)
        else:
            _link_or_copy(str(top), str(tree / top.name))
    for path in (tree, *tree.rglob("*")):
        if path.is_dir():
            path.chmod(0o755)
    assert _world_searchable(tree), f"{tree}: a parent is not searchable by others"
    atexit.register(shutil.rmtree, tree, True)
    _TREES[repo] = tree
    return tree


def _dependency_tops(project: str = "sealbox") -> set[str]:
    """The top-level names (packages, modules, extension files) that `project`'s run-time
    dependencies and theirs install, from their installed metadata; extras are left out."""
    from importlib import metadata

    tops: set[str] = set()
    seen: set[str] = set()
    todo = [project]
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:  # a dependency for another platform or Python
            continue
        todo += [
            re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0]
            for req in dist.requires or []
            if "extra ==" not in req
        ]
        if key != project:
            tops |= {
                f.parts[0]
                for f in dist.files or []
                if f.parts[0] not in ("..", "__pycache__")
                and not f.parts[0].endswith((".dist-info", ".data"))
            }
    return tops


def unprivileged_python() -> str:
    """An interpreter user nobody can start: this one's real binary when every directory above it
    is searchable by others, else the system's python of the same version, else this one."""
    real = Path(os.path.realpath(sys.executable))
    if _world_searchable(real.parent):
        return str(real)
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for folder in ("/usr/bin", "/usr/local/bin"):
        if os.access(Path(folder) / name, os.X_OK):
            return str(Path(folder) / name)
    return str(real)


def as_nobody(tree: Path) -> tuple[list[str], dict[str, str]]:
    """The argv prefix (setpriv to uid/gid nobody, the interpreter) and environment that run
    `-m agent ...` as nobody from `tree` (see `unprivileged_tree`); run it with cwd=tree."""
    setpriv = require_tool("setpriv")
    prefix = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", unprivileged_python()]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
    return prefix, {**env, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
