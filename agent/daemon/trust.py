"""Who may command this host: `<config>/orders-trusted/<hex>/public.pem` (the layout of the key
store's `trusted/`, read with its safety checks) and `<config>/agent.toml` (groups, two-person
rule). Evidence trust (`trusted/`) and command trust never mix: a key that may sign evidence
may not order a host about, and the other way round."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from agent.daemon.hostid import check_host_id
from agent.daemon.order import ACTIONS, OrderTrust
from manifest.errors import UsageError
from manifest.signing.keys import Identity, KeyStore

ENV = "SEALBOX_CONFIG_DIR"
DEFAULT_CONFIG = Path("/etc/sealbox")
ORDERS_TRUSTED = "orders-trusted"
AGENT_TOML = "agent.toml"


def config_dir(given: Path | None = None) -> Path:
    env = os.environ.get(ENV)
    return given or (Path(env) if env else DEFAULT_CONFIG)


def order_key_store(directory: Path) -> KeyStore:
    """A key store view whose `trusted/` is `orders-trusted/`: same checks, other directory."""
    store = KeyStore(directory)
    store.trusted_dir = directory / ORDERS_TRUSTED
    store.keys_dir = directory / ".no-private-keys-here"
    return store


def trust_order_key(directory: Path, pubkey: Path, name: str = "", role: str = "", org: str = "") -> Identity:
    return order_key_store(directory).trust(pubkey, name, role, org)


@dataclass(frozen=True)
class AgentConfig:
    groups: tuple[str, ...] = ()
    require: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def parse_require(items: tuple[str, ...] | list[str]) -> dict[str, int]:
    """`isolate=2` -> {"isolate": 2}."""
    out: dict[str, int] = {}
    for item in items:
        action, sep, count = item.partition("=")
        if not sep or action not in ACTIONS or not count.isdigit() or not 1 <= int(count) <= 8:
            raise UsageError(
                f"--require {item}: expected ACTION=N", f"ACTION one of {', '.join(ACTIONS)}, N 1-8"
            )
        out[action] = int(count)
    return out


def load_config(directory: Path) -> AgentConfig:
    path = directory / AGENT_TOML
    if not path.exists():
        return AgentConfig()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"agent configuration {path} cannot be read: {exc}") from exc
    groups = data.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise UsageError(f"{path}: groups must be a list of names")
    require = data.get("require", {})
    if not isinstance(require, dict):
        raise UsageError(f"{path}: [require] must map actions to counts")
    return AgentConfig(
        tuple(check_host_id(g, "group name") for g in groups),
        parse_require([f"{k}={v}" for k, v in require.items()]),
    )


def load_trust(directory: Path, require: dict[str, int]) -> tuple[OrderTrust, list[str]]:
    """The trusted order keys (unsafe or malformed entries skipped, named in the warnings)."""
    store = order_key_store(directory)
    keys = {k.identity.fingerprint: k.identity for k in store.trusted_keys()}
    return OrderTrust(keys, require), [w.line() for w in store.warnings]
