"""Stored-path encoding (SPEC §1): exact escapes, injective, manifest-safe."""

from __future__ import annotations

import hashlib

import pytest

from manifest.format.pathenc import MAX_STORED, decode_component, stored_path


@pytest.mark.parametrize(
    ("original", "stored"),
    [
        (b"/var/log/syslog", "data/files/var/log/syslog"),
        (b"/a b/100%/x=y", "data/files/a b/100=25/x=3Dy"),
        (b"/line\nbreak\r", "data/files/line=0Abreak=0D"),
        (b"/del\x7f", "data/files/del=7F"),
        (b"/latin1-\xe9t\xe9", "data/files/latin1-=E9t=E9"),
        ("/café/ünï".encode(), "data/files/café/ünï"),
        (b"/c1-\xc2\x85", "data/files/c1-=C2=85"),
        (b'/w<i>n:d"o\\w|s?*', "data/files/w=3Ci=3En=3Ad=22o=5Cw=7Cs=3F=2A"),
        (b"C:\\Users\\Ann\\mail.pst", "data/files/C/Users/Ann/mail.pst"),
    ],
)
def test_stored_path(original, stored):
    assert stored_path(original) == stored
    assert "%" not in stored and "\n" not in stored and "\r" not in stored


def test_round_trip_of_components():
    for name in [b"a=b%c", b"\xff\xfe", b"tab\there", "ok-ünï".encode()]:
        encoded = stored_path(b"/" + name).split("/", 2)[2]
        assert decode_component(encoded) == name


def test_dotdot_is_refused():
    with pytest.raises(ValueError):
        stored_path(b"/a/../etc/passwd")


def test_paths_too_long_to_store_as_they_are_go_to_data_long():
    deep = b"/srv" + b"/" + b"/".join([b"d" * 200] * 20) + b"/hidden.txt"  # over PATH_MAX
    stored = stored_path(deep)
    assert stored == f"data/long/{hashlib.sha256(deep).hexdigest()}-hidden.txt"
    wide = b"/tmp/" + b"\xff" * 200  # 200 bytes that escape to 600: over NAME_MAX
    assert stored_path(wide).startswith(f"data/long/{hashlib.sha256(wide).hexdigest()}-=FF")
    assert len(stored_path(wide)) <= len("data/long/") + 64 + 1 + 100
    assert not stored_path(wide).endswith(("=", "=F"))  # an escape is never cut in half
    fits = b"/" + b"/".join([b"d" * 200] * 10)
    assert stored_path(fits) == "data/files" + fits.decode() and len(stored_path(fits)) < MAX_STORED
