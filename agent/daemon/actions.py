"""What each order action does on this host, through the library (never a `sealbox` shell-out).

Every action is resumable: it is given the journal entry of its order, records its progress
there, and on a second call (after the agent was killed) continues from what it finds."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manifest.errors import SealboxError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from agent.daemon.journal import Journal
    from agent.daemon.order import Order
    from manifest.signing.keys import Signer
    from manifest.vault.location import VaultLocation

IN_FORCE = "isolation-order.json"


@dataclass
class Context:
    """What an action may use: the agent's key, state, vault and journal."""

    signer: Signer
    state: Path
    journal: Journal
    host: str
    vault: VaultLocation | None = None
    vault_client: Callable[[], Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def bundles(self) -> Path:
        return self.state / "bundles"


class ActionFailed(SealboxError):
    """The order was valid but could not be carried out; the status says why."""


def run(order: Order, ctx: Context) -> dict[str, Any]:
    """Carry out `order`; returns the details for its signed result."""
    handler = HANDLERS[order.action]
    return handler(order, ctx)


# -- isolation -------------------------------------------------------------------------
def in_force(state: Path) -> dict[str, Any] | None:
    """The isolate order the agent keeps applied (until restore or its expiry), or None."""
    try:
        return dict(json.loads((state / IN_FORCE).read_text()))
    except (OSError, ValueError):
        return None


def _set_in_force(state: Path, entry: dict[str, Any] | None) -> None:
    path = state / IN_FORCE
    if entry is None:
        path.unlink(missing_ok=True)
        return
    tmp = state / f".{IN_FORCE}.tmp"
    tmp.write_text(json.dumps(entry, sort_keys=True))
    tmp.replace(path)


def _vault_peer(ctx: Context) -> list[str]:
    """The vault's endpoint stays reachable: an isolated host still takes orders and stores evidence."""
    if ctx.vault is None or ctx.vault_client is None:
        return []
    from manifest.vault.client import endpoint_host_port

    return [f"{endpoint_host_port(ctx.vault_client())}/tcp"]


def _custody_target(order: Order, ctx: Context) -> dict[str, Any]:
    from agent.isolation import ledger

    return ledger.target(order.case, None, ctx.signer.fingerprint)


def isolate(order: Order, ctx: Context) -> dict[str, Any]:
    from agent.isolation import IsolateRequest, engine, ledger, parse_duration

    args = order.arguments
    current = engine.status()
    if current["status"] == "isolated" and ctx.journal.load(order.id).get("isolation_id") == current.get(
        "isolation_id"
    ):
        record: dict[str, Any] = {"id": current["isolation_id"], "ruleset_sha256": current["ruleset_sha256"]}
        resumed = True
    else:
        if current["status"] in ("interrupted", "partial", "unknown"):
            # A kill between loading rules and recording them: undo, then apply once, whole.
            engine.restore(
                f"agent: finishing order {order.id} after an interruption", key=ctx.signer.fingerprint
            )
        where = _custody_target(order, ctx)
        req = IsolateRequest(
            allow=(*args.get("allow", []), *_vault_peer(ctx)),
            allow_dns=bool(args.get("allow_dns", False)),
            check=args.get("check"),
            expire_seconds=parse_duration(args["expire"]) if args.get("expire") else None,
            reason=f"order {order.id}: {order.reason}",
            case=order.case,
            custody_target=where,
        )
        record = engine.isolate(req, ledger.hook(where))
        ctx.journal.update(order.id, isolation_id=record["id"])
        resumed = False
    _set_in_force(
        ctx.state,
        {
            "order": order.id,
            "case": order.case,
            "isolation_id": record["id"],
            "not_after_ns": order.not_after_ns,
        },
    )
    return {"isolation_id": record["id"], "ruleset_sha256": record.get("ruleset_sha256"), "resumed": resumed}


def restore(order: Order, ctx: Context) -> dict[str, Any]:
    from agent.isolation import engine

    _set_in_force(ctx.state, None)  # first: the drift check must not put back what is lifted
    result = engine.restore(f"order {order.id}: {order.reason}", key=ctx.signer.fingerprint)
    return {
        "restored": bool(result.get("restored")),
        "identical": result.get("identical"),
        "message": result.get("message") or result.get("note") or "",
        "drift": result.get("drift", []),
    }


def reapply_if_drifted(ctx: Context, now_ns: int) -> dict[str, Any] | None:
    """While an isolate order is in force: the isolation as recorded, loaded again if it drifted
    (and a signed custody event saying so). Returns what was found and done, or None if clean."""
    from agent.isolation import engine, ledger

    entry = in_force(ctx.state)
    if entry is None:
        return None
    if now_ns >= int(entry.get("not_after_ns", 0)):
        _set_in_force(ctx.state, None)
        return {"expired": True, "order": entry.get("order")}
    current = engine.status()
    if current["status"] in ("isolated", "busy"):  # busy: an order is isolating or restoring now
        return None
    findings = list(current.get("findings") or [])
    applied = engine.boot() if current["status"] in ("partial", "not isolated") else {"applied": False}
    done = {
        "order": entry.get("order"),
        "found": current["status"],
        "findings": findings,
        "reapplied": bool(applied.get("applied")),
        "notes": applied.get("notes", []),
    }
    if done["reapplied"]:
        hook = ledger.hook(
            {"case": entry["case"], "bundle": None, "ledger": None, "key": ctx.signer.fingerprint}
        )
        event = hook(
            "note",
            {
                "isolation_drift": findings,
                "reapplied": True,
                "order": entry.get("order"),
                "isolation_id": entry.get("isolation_id"),
            },
            f"isolation drifted ({current['status']}); re-applied by the agent (order {entry.get('order')})",
        )
        done["custody_seq"] = event.get("seq")
    return done


# -- evidence --------------------------------------------------------------------------
def _collect(order: Order, ctx: Context, volatile: bool | None) -> dict[str, Any]:
    from collectors.artifacts import Catalog
    from collectors.collection import run_collection
    from collectors.respond import build_request
    from manifest.verify import verify_bundle

    args = order.arguments
    out = ctx.bundles / order.id
    out.mkdir(parents=True, exist_ok=True)
    incomplete = sorted(out.glob("*.incomplete"))
    sealed = [p for p in sorted(out.iterdir()) if p.is_dir() and not p.name.endswith(".incomplete")]
    if sealed and not incomplete:
        bundle = sealed[-1]  # sealed before a kill: verify and store it, do not collect again
        resumed = "sealed"
    else:
        root = Path(args["root"]) if args.get("root") else None
        prepared = build_request(
            Catalog.load(()),
            case=order.case,
            out_dir=out,
            signer=ctx.signer,
            profile=args.get("profile"),
            root=root,
            with_volatile=volatile,
            reason=f"order {order.id}: {order.reason}",
            resume=incomplete[-1] if incomplete else None,
            private_mounts=True,
        )
        bundle = run_collection(prepared.request).bundle
        resumed = "collection" if incomplete else ""
    ctx.journal.update(order.id, bundle=str(bundle))
    report = verify_bundle(bundle, {ctx.signer.fingerprint})
    details: dict[str, Any] = {
        "bundle": bundle.name,
        "verified": report.ok,
        "findings": [f.line() for f in report.findings[:20]],
        "resumed": resumed,
    }
    if not report.ok:
        raise ActionFailed(f"bundle {bundle.name} does not verify: {report.findings[0].line()}")
    if args.get("push", True) and ctx.vault is not None:
        details.update(_push(bundle, ctx, f"order {order.id}: {order.reason}"))
    return details


def _push(bundle: Path, ctx: Context, reason: str) -> dict[str, Any]:
    from manifest.vault.bucket import parse_retention
    from manifest.vault.push import push

    assert ctx.vault is not None and ctx.vault_client is not None
    result = push(
        bundle,
        ctx.vault,
        ctx.signer,
        parse_retention("7y", "compliance"),
        trusted={ctx.signer.fingerprint},
        client=ctx.vault_client(),
        reason=reason,
    )
    return {
        "stored": True,
        "vault": ctx.vault.url,
        "key_prefix": result.prefix,
        "objects": result.objects,
    }


def respond(order: Order, ctx: Context) -> dict[str, Any]:
    return _collect(order, ctx, None)


def collect(order: Order, ctx: Context) -> dict[str, Any]:
    return _collect(order, ctx, False)


def push_bundle(order: Order, ctx: Context) -> dict[str, Any]:
    name = order.arguments.get("bundle", "")
    if ctx.vault is None:
        raise ActionFailed("this agent has no vault to push to", "run it with --vault s3://BUCKET")
    hits = [p for p in ctx.bundles.glob(f"*/{name}") if p.is_dir()] if name and "/" not in name else []
    if len(hits) != 1:
        raise UsageError(f"no sealed bundle named {name!r} in {ctx.bundles}")
    return {"bundle": name, **_push(hits[0], ctx, f"order {order.id}: {order.reason}")}


def report_status(order: Order, ctx: Context) -> dict[str, Any]:
    return snapshot(ctx)


def snapshot(ctx: Context) -> dict[str, Any]:
    """What a heartbeat and a `status` order report."""
    from manifest import __version__

    isolation: dict[str, Any]
    try:
        from agent.isolation import engine

        current = engine.status()
        isolation = {"status": current["status"], "findings": current.get("findings", [])[:5]}
    except SealboxError as exc:
        isolation = {"status": "unknown", "findings": [exc.message]}
    last = ctx.journal.last()
    free = shutil.disk_usage(ctx.state)
    return {
        "version": __version__,
        "isolation": isolation,
        "isolation_order": (in_force(ctx.state) or {}).get("order"),
        "last_order": {k: last.get(k) for k in ("id", "action", "phase", "result", "bundle")}
        if last
        else None,
        "last_bundle": ctx.journal.last_bundle(),
        "free_bytes": free.free,
    }


HANDLERS: dict[str, Callable[[Order, Context], dict[str, Any]]] = {
    "isolate": isolate,
    "restore": restore,
    "respond": respond,
    "collect": collect,
    "push": push_bundle,
    "status": report_status,
}
