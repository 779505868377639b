"""Stored names every tool reads (SPEC §1, §8 amendment 7): whatever a source file is called,
the sealed bundle verifies with sealbox, `sha256sum -c` and `bagit.py --validate`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from manifest.format.pathenc import decode_component, stored_path
from tests.support.builders import collect, make_key
from tests.support.env import Cli, clear_flags, require_tool

# Characters that break one reader or another: line separators of every kind, white space that
# str.strip() removes, combining marks (NFC/NFD twins), case twins, Windows-illegal characters.
_AWKWARD = '\u2028\u2029\u0085\x0b\x0c\x1c\x1d\x1e\r\n\t \u00a0\u3000.\u0301eE\u00e9\u212b\u00c5=%\\:*?"<>|~'
_TEXT = st.text(
    alphabet=st.sampled_from(list(_AWKWARD)) | st.characters(codec="utf-8"), min_size=1, max_size=40
)
_NAME = (
    st.one_of(
        _TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(min_size=1, max_size=40),  # invalid UTF-8 too
        st.integers(min_value=200, max_value=255).map(
            lambda n: b"L" * (n - 1) + b"."
        ),  # long, dot at the end
    )
    .map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_"))
    .filter(lambda b: b not in (b".", b".."))
)


def _sealed_bundle_checks(cli: Cli, bundle: Path) -> None:
    verify = cli("verify", bundle)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    sha = subprocess.run(
        ["sha256sum", "--quiet", "--strict", "-c", "manifest-sha256.txt"],
        cwd=bundle,
        capture_output=True,
        check=False,
    )
    assert sha.returncode == 0, sha.stdout + sha.stderr
    bagit_py = require_tool("bagit.py")
    bag = subprocess.run([bagit_py, "--validate", str(bundle)], capture_output=True, text=True, check=False)
    assert bag.returncode == 0, bag.stderr


def _collect_names(cli: Cli, names: list[bytes]) -> None:
    with tempfile.TemporaryDirectory(dir=cli.home.parent) as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        out = Path(tmp) / "out"
        out.mkdir()
        made: dict[bytes, bytes] = {}
        for number, name in enumerate(names):
            folder = os.fsencode(src / f"d{number % 3}") + b"/" + name
            if folder in made:
                continue
            os.makedirs(os.path.dirname(folder), exist_ok=True)
            if number % 2:  # the name as a directory holding a file, as well as a file
                os.mkdir(folder)
                path = folder + b"/f"
            else:
                path = folder
            content = repr(name).encode() + b"\n"
            with open(path, "wb") as fh:
                fh.write(content)
            made[folder] = content
        try:
            bundle = collect(cli, out, src, case="C-NAMES")
            _sealed_bundle_checks(cli, bundle)
            items = [json.loads(line) for line in (bundle / "metadata/items.jsonl").read_bytes().splitlines()]
            stored = [i["stored_as"] for i in items if i["kind"] == "file"]
            assert len(stored) == len(made)
            for rel in stored:
                assert not any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in rel), rel
                for part in rel.split("/"):
                    assert not part.endswith((" ", ".")) and not part[-1:].isspace(), rel
                    assert unicodedata.is_normalized("NFC", part), rel
        finally:
            clear_flags(out)
            shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def named_cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("names") / "sealbox-home")
    make_key(cli)
    return cli


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(names=st.lists(_NAME, min_size=1, max_size=8))
@example(names=["line\u2028sep".encode(), "para\u2029sep".encode(), b"trailing space ", b"trailing dot."])
@example(names=["e\u0301".encode(), "\u00e9".encode(), b"Case", b"case", b"next\xc2\x85line"])
@example(names=[b"\xff\xfe bad utf-8 .", "nbsp\u00a0".encode(), b"vt\x0bff\x0c", b"...", b" . "])
def test_any_name_gives_a_bundle_every_tool_verifies(named_cli: Cli, names: list[bytes]) -> None:
    _collect_names(named_cli, names)


@pytest.mark.parametrize(
    ("original", "stored"),
    [
        ("/a/line\u2028sep".encode(), "data/files/a/line=E2=80=A8sep"),
        ("/a/para\u2029sep".encode(), "data/files/a/para=E2=80=A9sep"),
        (b"/a/trailing space ", "data/files/a/trailing space=20"),
        (b"/a/trailing dot./x", "data/files/a/trailing dot=2E/x"),
        (b"/a/vt\x0bff\x0c", "data/files/a/vt=0Bff=0C"),
        ("/a/nbsp\u00a0".encode(), "data/files/a/nbsp=C2=A0"),
        ("/a/e\u0301t\u00e9".encode(), "data/files/a/e=CC=81t=C3=A9"),  # not NFC: ASCII only
        ("/a/\u00e9t\u00e9".encode(), "data/files/a/\u00e9t\u00e9"),  # NFC stays readable
    ],
)
def test_line_separators_trailing_space_and_dot_are_escaped(original: bytes, stored: str) -> None:
    assert stored_path(original) == stored
    assert decode_component(stored.rsplit("/", 1)[1]) == original.rsplit(b"/", 1)[1]


@given(name=_NAME)
@settings(max_examples=300, deadline=None)
def test_escaping_is_reversible(name: bytes) -> None:
    stored = stored_path(b"/x/" + name)
    if stored.startswith("data/files/"):
        assert decode_component(stored.removeprefix("data/files/x/")) == name
