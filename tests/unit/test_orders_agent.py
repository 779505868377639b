"""The agent's memory and trust, without root or network: the journal keeps an order id once,
orders-trusted/ is not trusted/, and a huge spool file costs one small read."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from agent.daemon.journal import Journal
from agent.daemon.order import MAX_BYTES
from agent.daemon.runner import _read_head
from agent.daemon.trust import load_config, load_trust, parse_require, trust_order_key
from manifest.errors import UsageError
from manifest.signing.keys import KeyStore

if TYPE_CHECKING:
    from pathlib import Path


def test_an_order_id_is_claimed_once_across_journal_instances(tmp_path: Path) -> None:
    first = Journal(tmp_path)
    assert first.claim("a", {"id": "a", "action": "status"}) is True
    assert first.claim("a", {"id": "a"}) is False
    again = Journal(tmp_path)  # a restarted agent
    assert again.claim("a", {"id": "a"}) is False
    assert [e["id"] for e in again.unfinished()] == ["a"]
    again.update("a", phase="running")
    assert again.unfinished()[0]["phase"] == "running"
    again.update("a", phase="done", result="done")
    assert again.unfinished() == [] and again.last() is not None and again.last()["phase"] == "done"
    assert again.last_bundle() is None
    again.claim("b", {"id": "b", "action": "respond"})
    again.update("b", phase="done", details={"bundle": "C_h_1", "verified": True, "stored": True})
    again.claim("c", {"id": "c", "action": "restore"})
    assert again.last() is not None and again.last()["id"] == "c"
    assert again.last_bundle() == {"order": "b", "bundle": "C_h_1", "verified": True, "stored": True}
    assert not list((tmp_path / "orders").glob(".*.tmp"))


def test_orders_trusted_is_separate_from_evidence_trust(tmp_path: Path) -> None:
    it = KeyStore(tmp_path / "it")
    evidence_only = KeyStore(tmp_path / "it2")
    alice = it.generate("Alice", "IT security", "City IT")
    bob = evidence_only.generate("Bob", "Responder", "City IT")
    config = tmp_path / "etc-sealbox"
    config.mkdir(mode=0o755)
    # Bob's key is trusted for evidence on this host, Alice's for orders.
    host_store = KeyStore(config)
    host_store.trust(bob.directory / "public.pem")
    trust_order_key(config, alice.directory / "public.pem")
    trust, warnings = load_trust(config, {"isolate": 2})
    assert set(trust.keys) == {alice.identity.fingerprint} and warnings == []
    assert trust.required("isolate") == 2 and trust.required("status") == 1
    assert host_store.trusted_fingerprints() == {bob.identity.fingerprint}


def test_agent_toml_and_require(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text('groups = ["clerks"]\n[require]\nisolate = 2\n')
    config = load_config(tmp_path)
    assert config.groups == ("clerks",) and config.require == {"isolate": 2}
    for bad in ("isolate", "isolate=0", "reboot=2", "isolate=x"):
        with pytest.raises(UsageError):
            parse_require([bad])
    (tmp_path / "agent.toml").write_text("groups = 3\n")
    with pytest.raises(UsageError, match="groups"):
        load_config(tmp_path)


def test_a_huge_spool_file_costs_one_small_read(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(1 << 30)
    data = _read_head(big)
    assert data is not None and len(data) == MAX_BYTES + 1
    (tmp_path / "link.json").symlink_to(big)
    assert _read_head(tmp_path / "link.json") is None
    assert _read_head(tmp_path) is None
