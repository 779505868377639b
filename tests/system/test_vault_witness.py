"""The vault as custody witness: a local log that lost its last events, or that was rewritten
after them, no longer agrees with the vault, and `verify --vault` says so."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.support.builders import writable_copy
from tests.support.vault import it_person, new_bucket, sealed_bundle, vault_cli

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.vault_server import VaultServer


def _kinds(proc: object) -> set[str]:
    return {f["kind"] for f in json.loads(proc.stdout)["findings"]}  # type: ignore[attr-defined]


def test_deleted_or_rewritten_custody_tail_is_found(
    vault: VaultServer, tmp_path: Path, out_dir: Path
) -> None:
    it = it_person(tmp_path)
    bundle = sealed_bundle(it, tmp_path, out_dir)
    bucket = new_bucket(vault, it)
    up = vault_cli(it, vault)
    where = f"s3://{bucket}/witness"
    assert up("vault", "push", bundle, "--vault", where).returncode == 0
    for n in (1, 2):
        added = up("custody", "add", bundle, "--event", "note", "--reason", f"looked at it ({n})", check=True)
        assert "witnessed in the vault: " in added.stderr  # each event reaches the vault as it is added
    assert up("vault", "witness", bundle, check=True).stdout.startswith("witnessed 0 ")
    proc = up("verify", bundle, "--vault", where, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    truncated = writable_copy(bundle, tmp_path / "truncated")
    log = truncated / "custody/continuation.jsonl"
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:-2]))
    assert up("verify", truncated).returncode == 0  # on its own the shorter log still holds
    proc = up("verify", truncated, "--vault", where, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    assert [f["kind"] for f in findings] == ["custody-truncated", "custody-truncated"], findings

    forked = writable_copy(bundle, tmp_path / "forked")
    log = forked / "custody/continuation.jsonl"
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:-1]))
    up("custody", "add", forked, "--event", "note", "--reason", "another story", check=True)
    assert up("verify", forked).returncode == 0
    proc = up("verify", forked, "--vault", where, "--json")
    assert proc.returncode == 1
    # The forked copy's `custody add` wrote its event to the vault too, which keeps both: the
    # vault's own record now shows two events at one seq.
    assert _kinds(proc) == {"vault-custody-forked"}
