"""The vault endpoint as the isolation config's standing channel: URL -> HOST:PORT/tcp."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from agent.isolation.config import load_config
from manifest.errors import UsageError
from manifest.vault.client import host_port

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://203.0.113.20:8333", "203.0.113.20:8333"),
        ("https://vault.city.example", "vault.city.example:443"),
        ("http://vault.city.example/", "vault.city.example:80"),
        ("http://[2001:db8:1::20]:8333", "[2001:db8:1::20]:8333"),
        ("198.51.100.7:9000", "198.51.100.7:9000"),
    ],
)
def test_host_port(url: str, expected: str) -> None:
    assert host_port(url) == expected


@pytest.mark.parametrize("url", ["ftp://203.0.113.2/x", "http://", "http://h:99999"])
def test_host_port_refuses_what_is_not_an_endpoint(url: str) -> None:
    with pytest.raises(ValueError, match=r"endpoint|port"):
        host_port(url)


def test_vault_key_joins_the_standing_channel(tmp_path: Path) -> None:
    config = tmp_path / "isolation.toml"
    config.write_text('allow = ["203.0.113.10:22/tcp"]\nvault = "https://203.0.113.20"\n')
    loaded = load_config(config)
    assert loaded.allow == ("203.0.113.10:22/tcp", "203.0.113.20:443/tcp")
    assert loaded.vault == "https://203.0.113.20" and loaded.keeps_it_reachable


def test_vault_auto_is_the_endpoint_boto3_would_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("boto3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://203.0.113.20:8333")
    config = tmp_path / "isolation.toml"
    config.write_text('vault = "auto"\n')
    assert load_config(config).allow == ("203.0.113.20:8333/tcp",)


@pytest.mark.parametrize("value", ['"ftp://x"', "true", '""'])
def test_a_bad_vault_key_is_refused_in_one_line(tmp_path: Path, value: str) -> None:
    config = tmp_path / "isolation.toml"
    config.write_text(f"vault = {value}\n")
    with pytest.raises(UsageError, match="vault"):
        load_config(config)
