"""The pieces of containment that need no root: the backend registry, the ruleset comparison and
the case ledger (real keys, real signatures, real files)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from agent.isolation import backends, engine, ledger, rulesets
from agent.isolation.model import Policy, parse_allow
from manifest.errors import UsageError
from manifest.signing.custody import verify_chain
from manifest.signing.keys import KeyStore

PROTOCOL_METHODS = [
    name for name, _ in inspect.getmembers(backends.Backend, inspect.isfunction) if not name.startswith("_")
]


@pytest.mark.parametrize("name", list(backends.LINUX))
def test_every_registered_backend_has_the_whole_interface(name: str):
    backend = backends.LINUX[name]()
    assert backend.name == name
    for method in PROTOCOL_METHODS:
        assert callable(getattr(backend, method, None)), f"{name} lacks {method}"
    ruleset = backend.render(Policy(allow=parse_allow(["203.0.113.2:8443/tcp"])[0]))
    assert "203.0.113.2" in ruleset
    assert set(backend.persist_files(ruleset)) and backend.persist_command(Path("/var/lib/sealbox"))


@pytest.mark.parametrize("platform", list(backends.PLANS))
def test_every_plan_backend_writes_a_plan_for_its_platform(platform: str):
    plan = backends.plan_backend(platform).plan(Policy(allow=parse_allow(["203.0.113.2:8443"])[0]))
    assert plan.platform == platform and "203.0.113.2" in plan.render()


def test_choose_is_the_one_place_and_refuses_unknown_names():
    with pytest.raises(UsageError, match="unknown backend 'pf'"):
        backends.choose("pf")
    with pytest.raises(UsageError, match="no plan backend for linux"):
        backends.plan_backend("linux")
    assert backends.CHOICES[0] == "auto" and set(backends.CHOICES[1:]) == set(backends.LINUX)
    # The engine picks backends only through the registry: no backend names in its code.
    source = inspect.getsource(engine)
    for name in (*backends.LINUX, *backends.PLANS):
        assert f'"{name}"' not in source, name


NFT_BEFORE = """table inet f {
\tcounter c {
\t\tpackets 3 bytes 180
\t}
\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t\tip daddr 198.51.100.7 counter packets 1 bytes 60 drop
\t}
}
"""


def test_counters_alone_are_not_drift_but_a_changed_rule_is():
    before = {"views": {rulesets.NFT: NFT_BEFORE}}
    moved = NFT_BEFORE.replace("packets 3 bytes 180", "packets 90 bytes 7000").replace(
        "packets 1 bytes 60", "packets 5 bytes 300"
    )
    assert rulesets.compare(before, {"views": {rulesets.NFT: moved}}).identical
    changed = moved.replace("198.51.100.7", "198.51.100.8")
    result = rulesets.compare(before, {"views": {rulesets.NFT: changed}})
    assert not result.identical and [d["source"] for d in result.drift] == [rulesets.NFT]
    assert "-\t\tip daddr 198.51.100.7 counter packets 0 bytes 0 drop" in result.drift[0]["diff"]
    assert "+\t\tip daddr 198.51.100.8 counter packets 0 bytes 0 drop" in result.drift[0]["diff"]


def test_an_empty_filter_table_left_behind_is_drift_unless_legacy_keeps_it():
    save = (
        "# Generated on Tue\n*nat\n:PREROUTING ACCEPT [4:240]\n-A PREROUTING -j DOCKER\nCOMMIT\n# Completed\n"
    )
    left = save.replace("# Generated on Tue", "# Generated on Wed").replace("[4:240]", "[9:540]")
    left += "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    nft_variant = rulesets.compare({"views": {"iptables-save": save}}, {"views": {"iptables-save": left}})
    assert [d["source"] for d in nft_variant.drift] == ["iptables-save"]
    legacy = rulesets.compare(
        {"views": {"iptables-legacy-save": save}}, {"views": {"iptables-legacy-save": left}}
    )
    assert legacy.drift == [] and not legacy.identical
    assert "empty `filter` table" in legacy.notes[0]
    with_rule = left.replace(":OUTPUT ACCEPT [0:0]\n", ":OUTPUT ACCEPT [0:0]\n-A OUTPUT -j DROP\n")
    legacy = rulesets.compare(
        {"views": {"iptables-legacy-save": save}}, {"views": {"iptables-legacy-save": with_rule}}
    )
    assert [d["source"] for d in legacy.drift] == ["iptables-legacy-save"]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KeyStore:
    monkeypatch.setenv("SEALBOX_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SEALBOX_PASSPHRASE_FILE", raising=False)
    store = KeyStore.default()
    store.generate("Ann Example", "IT responder", "City IT")
    return store


def test_case_ledger_is_a_signed_hash_chain_the_bundle_verifier_reads(store: KeyStore, tmp_path: Path):
    where = ledger.target("OKC-2026-0042", None, None)
    hook = ledger.hook(where)
    for event in ("network-isolated", "network-restored", "network-isolated"):
        hook(event, {"isolation_id": "x"}, "contain")
    directory = ledger.case_dir("OKC-2026-0042")
    assert Path(where["ledger"]) == directory
    lines = (directory / "custody" / "custody.jsonl").read_text().splitlines()
    events = [json.loads(x) for x in lines]
    assert [e["seq"] for e in events] == [1, 2, 3] and events[0]["prev"] == "0" * 64
    assert all(e["bundle"] == ledger.LEDGER_BUNDLE and e["case"] == "OKC-2026-0042" for e in events)
    assert verify_chain(directory)[0] == []
    exported = ledger.export("OKC-2026-0042", tmp_path / "out")
    assert verify_chain(tmp_path / "out")[0] == [] and exported.read_text() == "\n".join(lines) + "\n"
    with pytest.raises(UsageError, match="already exists"):
        ledger.export("OKC-2026-0042", tmp_path / "out")
    path = directory / "custody" / "custody.jsonl"
    path.write_text(path.read_text().replace('"contain"', '"c0ntain"', 1))
    kinds = {f.kind for f in verify_chain(directory)[0]}
    assert "custody-signature-invalid" in kinds and "custody-link-broken" in kinds


def test_case_ids_stay_inside_the_cases_directory(store: KeyStore):
    for case in ("../../etc", ".hidden", "a/b", "OKC 1"):
        directory = ledger.case_dir(case)
        assert directory.parent == ledger.cases_dir() and not directory.name.startswith(".")
    with pytest.raises(UsageError, match="case id is needed"):
        ledger.case_dir("  ")


def test_a_bundle_target_must_be_a_sealed_bundle(store: KeyStore, tmp_path: Path):
    with pytest.raises(UsageError, match="not a sealed sealbox bundle"):
        ledger.target("C", tmp_path, None)


def test_a_record_of_the_previous_format_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from agent.isolation import state

    monkeypatch.setenv("SEALBOX_STATE_DIR", str(tmp_path))
    old = {
        "format": 1,
        "id": "i",
        "state": "isolated",
        "case": "C-1",
        "backend": "nft",
        "snapshot_before": {"nft_text": "table ip t {\n}\n", "nft_json": None, "taken_at": "T"},
        "custody_target": {"bundle": "/b", "key": "SHA256:x"},
    }
    (tmp_path / "isolation.json").write_text(json.dumps(old))
    record = state.load()
    assert record is not None and record["format"] == state.FORMAT
    assert record["snapshot_before"]["views"] == {rulesets.NFT: "table ip t {\n}\n"}
    assert record["custody_target"] == {"case": "C-1", "ledger": None, "bundle": "/b", "key": "SHA256:x"}
