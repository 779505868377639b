"""IT's standing channel: `isolation.toml`, merged into every isolation of this host.

Looked up in this order: `--config PATH`; `$SEALBOX_ISOLATION_CONFIG` (used when the file
exists); `/etc/sealbox/isolation.toml`; `$SEALBOX_HOME/isolation.toml` (the key store). Keys:

    allow = ["203.0.113.10:8443/tcp", "[2001:db8:1::10]:8443/tcp"]  # management server, vault
    allow_in = ["203.0.113.10:22/tcp"]   # IT may open connections to this host's port 22
    resolvers = ["203.0.113.53"]         # IT's resolvers: DNS (udp/tcp 53) to these only
    allow_dns = false                    # also the resolvers of /etc/resolv.conf
    dhcp_servers = ["203.0.113.1"]       # besides the servers of the current leases
    check = "203.0.113.10:8443"          # the default --check target
    max_union_v4 = 8                     # widest allow-list in total: one /8 of IPv4 ...
    max_union_v6 = 32                    # ... and one /32 of IPv6
    vault = "auto"                       # the evidence vault's S3 endpoint stays reachable

`vault` is the endpoint's URL (`"https://vault.city.example"`, `"http://203.0.113.20:8333"`) or
`"auto"`: the endpoint boto3's standard configuration names for the isolating process
(AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, the AWS profile's endpoint_url; AWS S3 itself when none),
resolved once when the isolation is applied. It joins `allow` as `HOST:PORT/tcp`.

An unknown key is refused (a typo must not silently open or close the channel).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manifest.errors import SealboxError, UsageError

SYSTEM_CONFIG = Path("/etc/sealbox/isolation.toml")
ENV = "SEALBOX_ISOLATION_CONFIG"
_LISTS = ("allow", "allow_in", "resolvers", "dhcp_servers")


@dataclass(frozen=True)
class IsolationConfig:
    path: Path | None = None
    allow: tuple[str, ...] = ()
    allow_in: tuple[str, ...] = ()
    resolvers: tuple[str, ...] = ()
    allow_dns: bool = False
    dhcp_servers: tuple[str, ...] = ()
    check: str | None = None
    max_union_v4: int = 8
    max_union_v6: int = 32
    vault: str | None = None  # as written; its endpoint is in `allow`

    @property
    def keeps_it_reachable(self) -> bool:
        return bool(self.allow or self.allow_in)


def _home() -> Path:
    env = os.environ.get("SEALBOX_HOME")
    return Path(env) if env else Path.home() / ".config" / "sealbox"


def find_config() -> Path | None:
    """The config file that applies here, or None."""
    env = os.environ.get(ENV)
    candidates = (Path(env),) if env else (SYSTEM_CONFIG, _home() / "isolation.toml")
    for candidate in candidates:
        try:
            if candidate.is_file():
                return candidate
        except OSError:  # there but unreadable: load_config says so
            return candidate
    return None


def _strings(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{path}: {key} must be a list of strings")
    return tuple(value)


def _prefix(path: Path, key: str, value: Any, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= bits:
        raise UsageError(f"{path}: {key} must be a prefix length from 1 to {bits}")
    return value


def vault_allow(path: Path, value: Any) -> str:
    """The `vault` key as an allow entry: the endpoint's `HOST:PORT/tcp`."""
    from manifest.vault.client import endpoint_host_port, host_port

    if not isinstance(value, str) or not value:
        raise UsageError(f'{path}: vault must be the S3 endpoint URL or "auto"')
    try:
        return f"{endpoint_host_port() if value == 'auto' else host_port(value)}/tcp"
    except ImportError as exc:
        raise UsageError(f'{path}: vault = "auto" needs boto3', "pip install boto3") from exc
    except ValueError as exc:
        raise UsageError(f"{path}: vault: {exc}", 'e.g. vault = "https://vault.city.example"') from exc


def load_config(path: Path | None = None) -> IsolationConfig:
    """Read `path` (or the one `find_config` names); an empty config when there is none."""
    path = path or find_config()
    if path is None:
        return IsolationConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the isolation config ({exc.strerror})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from exc
    known = {*_LISTS, "allow_dns", "check", "max_union_v4", "max_union_v6", "vault"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(
            f"{path}: unknown key {unknown[0]!r}", hint=f"known keys: {', '.join(sorted(known))}"
        )
    lists = {k: _strings(path, k, data[k]) for k in _LISTS if k in data}
    vault = data.get("vault")
    if vault is not None:
        lists["allow"] = (*lists.get("allow", ()), vault_allow(path, vault))
    check = data.get("check")
    if check is not None and not isinstance(check, str):
        raise UsageError(f"{path}: check must be a string HOST:PORT")
    allow_dns = data.get("allow_dns", False)
    if not isinstance(allow_dns, bool):
        raise UsageError(f"{path}: allow_dns must be true or false")
    return IsolationConfig(
        path=path,
        check=check,
        allow_dns=allow_dns,
        max_union_v4=_prefix(path, "max_union_v4", data.get("max_union_v4", 8), 32),
        max_union_v6=_prefix(path, "max_union_v6", data.get("max_union_v6", 32), 128),
        vault=vault,
        **lists,
    )


def standing_channel() -> Path | None:
    """The isolation.toml that keeps IT reachable, if one is configured and valid."""
    try:
        config = load_config(find_config())
    except SealboxError:
        return None
    return config.path if config.keeps_it_reachable else None
