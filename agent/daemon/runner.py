"""`sealbox agent run`: take orders from the spool and the vault, carry them out one at a time,
answer each with a signed status, heartbeat every interval, keep an ordered isolation in force.

Threads: the main loop (spool, vault polling with jitter, heartbeat, drift) and one worker that
executes accepted orders in turn. Everything the agent must not forget is on disk before it acts
(journal.py), so `kill -9` at any point loses nothing and repeats nothing."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import queue
import random
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from agent.daemon import actions
from agent.daemon.journal import Journal
from agent.daemon.order import MAX_BYTES, MAX_VALIDITY, REPLAYED, Order, OrderRefused, check, peek_id
from agent.daemon.statusdoc import make_status, status_bytes
from agent.daemon.trust import load_trust
from manifest.errors import SealboxError, UsageError
from manifest.format.timefmt import now_ns

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from manifest.signing.keys import Signer
    from manifest.vault.location import VaultLocation

log = structlog.get_logger("sealbox.agent")
PROCESSED = "processed"
SETTLE_NS = 500_000_000  # a spool file younger than this may still be being written


@dataclass
class Settings:
    state: Path
    config: Path
    host: str
    spool: Path | None = None
    vault: VaultLocation | None = None
    interval: float = 30.0
    groups: tuple[str, ...] = ()
    require: dict[str, int] = field(default_factory=dict)
    once: bool = False  # one pass (spool, vault, heartbeat, the orders taken), then return
    heartbeat: float = 0.0  # seconds between heartbeats; 0: every interval


@contextlib.contextmanager
def single_instance(state: Path) -> Iterator[None]:
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(state / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise UsageError(f"another agent runs with state {state}", "stop it first") from exc
        yield
    finally:
        os.close(fd)


class Agent:
    def __init__(self, settings: Settings, signer: Signer, vault_client: Any | None = None) -> None:
        self.s = settings
        self.signer = signer
        self.journal = Journal(settings.state)
        self.queue: queue.Queue[str] = queue.Queue()
        self.wake = threading.Event()
        self.stop = threading.Event()
        self._client = vault_client
        self.trust, warnings = load_trust(settings.config, settings.require)
        for w in warnings:
            log.warning("orders-trusted entry skipped", problem=w)
        self.ctx = actions.Context(
            signer,
            settings.state,
            self.journal,
            settings.host,
            settings.vault,
            self.client if settings.vault else None,
        )
        self.seen_path = settings.state / "vault-seen.json"
        self.seen: dict[str, int] = self._load_seen()
        (settings.state / "status").mkdir(exist_ok=True, mode=0o700)

    # -- the vault ---------------------------------------------------------------------
    def client(self) -> Any:
        if self._client is None:
            from manifest.vault.client import make_client

            self._client = make_client(attempts=2, read_timeout=30)
        return self._client

    def _load_seen(self) -> dict[str, int]:
        try:
            data = json.loads(self.seen_path.read_text())
            return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}
        except (OSError, ValueError, TypeError):
            return {}

    def _save_seen(self) -> None:
        cutoff = now_ns() - 2 * MAX_VALIDITY
        self.seen = {k: v for k, v in self.seen.items() if v >= cutoff}
        tmp = self.seen_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.seen, sort_keys=True))
        tmp.replace(self.seen_path)

    def poll_vault(self) -> int:
        """Orders for this host and its groups not seen before; returns how many were taken."""
        from manifest.format.timefmt import compact_utc
        from manifest.vault.errors import VaultError
        from manifest.vault.orders import GROUP_MARK, get_document, list_documents, orders_prefix

        assert self.s.vault is not None
        taken = 0
        oldest = compact_utc(max(0, now_ns() - MAX_VALIDITY))
        for target in (self.s.host, *(GROUP_MARK + g for g in self.s.groups)):
            prefix = orders_prefix(self.s.vault, target)
            for listed in list_documents(self.client(), self.s.vault, prefix, prefix + oldest):
                mark = f"{listed.key} {listed.version}"
                if mark in self.seen:
                    continue
                source = f"vault:{listed.key}"
                if listed.size > MAX_BYTES:
                    self.refuse(OrderRefused("oversized", f"{listed.size} bytes"), source)
                else:
                    try:
                        data = get_document(self.client(), self.s.vault, listed.key, MAX_BYTES)
                    except VaultError as exc:
                        log.warning("vault order unreadable", key=listed.key, problem=exc.message)
                        continue
                    taken += self.take(data, source)
                self.seen[mark] = now_ns()
                self._save_seen()
        return taken

    # -- the spool ---------------------------------------------------------------------
    def scan_spool(self) -> bool:
        """Take every settled file in the spool; True if one was too fresh (look again soon)."""
        assert self.s.spool is not None
        spool = self.s.spool
        done = spool / PROCESSED
        done.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = False
        for path in sorted(spool.iterdir()):
            if path.name.startswith(".") or path.name == PROCESSED:
                continue
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            if now_ns() - st.st_mtime_ns < SETTLE_NS:
                fresh = True
                continue
            data = _read_head(path)
            target = done / f"{now_ns()}-{path.name}"
            try:
                path.rename(target)
            except OSError as exc:
                log.warning("spool file cannot be moved aside", path=str(path), problem=exc.strerror)
                continue
            source = f"spool:{path.name}"
            if data is None:
                self.refuse(OrderRefused("malformed", "not a regular file"), source)
            else:
                self.take(data, source)
        return fresh

    # -- one document in ---------------------------------------------------------------
    def take(self, data: bytes, source: str) -> int:
        """Check one order document; accept it (claim its id, queue it) or refuse it, signed."""
        try:
            order = check(data, trust=self.trust, host=self.s.host, groups=self.s.groups)
        except OrderRefused as exc:
            if exc.order_id is None:
                exc.order_id = peek_id(data)
            self.refuse(exc, source, data)
            return 0
        entry = {
            "id": order.id,
            "action": order.action,
            "case": order.case,
            "source": source,
            "order": order.doc,
        }
        if not self.journal.claim(order.id, entry):
            self.refuse(OrderRefused(REPLAYED, "this order id was accepted before", order.id), source)
            return 0
        self.publish("accepted", order, result="accepted", message=f"from {source}")
        self.queue.put(order.id)
        return 1

    def refuse(self, exc: OrderRefused, source: str, data: bytes | None = None) -> None:
        name = exc.order_id or "refused-" + hashlib.sha256(data or source.encode()).hexdigest()[:16]
        doc = make_status(
            self.signer,
            host=self.s.host,
            kind="refusal",
            order=exc.order_id,
            result="refused",
            code=exc.code,
            message=exc.reason,
            details={"source": source},
        )
        self._write_status(name, doc)

    def publish(self, kind: str, order: Order | None, **fields: Any) -> dict[str, Any]:
        doc = make_status(
            self.signer,
            host=self.s.host,
            kind=kind,
            order=order.id if order else None,
            action=order.action if order else None,
            **fields,
        )
        self._write_status(order.id if order else kind, doc)
        return doc

    def _write_status(self, name: str, doc: dict[str, Any]) -> None:
        data = status_bytes(doc)
        local = self.s.state / "status" / f"{name}.json"
        tmp = local.with_name(f".{local.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(local)
        with open(self.s.state / "agent-log.jsonl", "ab") as f:
            f.write(data)
        log.info(
            doc["kind"],
            order=doc.get("order"),
            result=doc.get("result"),
            code=doc.get("code"),
            message=doc.get("message"),
        )
        if self.s.vault is not None:
            from manifest.vault.orders import heartbeat_key, put_document, status_key

            key = (
                heartbeat_key(self.s.vault, self.s.host)
                if doc["kind"] == "heartbeat"
                else status_key(self.s.vault, self.s.host, name)
            )
            try:
                put_document(self.client(), self.s.vault, key, data)
            except SealboxError as exc:  # the local copy stands; the next heartbeat tries again
                log.warning("status not stored in the vault", key=key, problem=exc.message)

    # -- carrying orders out -------------------------------------------------------------
    def execute(self, order_id: str) -> None:
        entry = self.journal.load(order_id)
        if entry.get("phase") not in ("accepted", "running"):
            return
        order = Order(entry["order"])
        resumed = entry.get("phase") == "running"
        self.journal.update(order_id, phase="running")
        try:
            details = actions.run(order, self.ctx)
        except SealboxError as exc:
            self.journal.update(order_id, phase="failed", result=exc.diagnostics())
            self.publish("result", order, result="failed", message=exc.diagnostics())
            return
        except Exception as exc:  # a bug: the order fails with its name, the agent goes on
            self.journal.update(order_id, phase="failed", result=f"{type(exc).__name__}: {exc}")
            self.publish(
                "result", order, result="failed", message=f"internal error: {type(exc).__name__}: {exc}"
            )
            log.exception("order failed", order=order_id)
            return
        details["resumed_after_restart"] = resumed
        self.journal.update(order_id, phase="done", result="done", details=details)
        self.publish("result", order, result="done", details=details)

    def worker(self) -> None:
        while not self.stop.is_set():
            try:
                order_id = self.queue.get(timeout=0.5)
            except queue.Empty:
                continue
            self.execute(order_id)
            self.queue.task_done()

    # -- every interval -------------------------------------------------------------------
    def check_drift(self) -> None:
        drift: dict[str, Any] | None = None
        try:
            drift = actions.reapply_if_drifted(self.ctx, now_ns())
        except SealboxError as exc:
            drift = {"reapplied": False, "error": exc.diagnostics()}
        if drift is not None and not drift.get("expired"):
            self.publish(
                "drift", None, result="reapplied" if drift.get("reapplied") else "failed", details=drift
            )

    def heartbeat(self) -> None:
        details = actions.snapshot(self.ctx)
        details["interval"] = int(self.s.heartbeat or self.s.interval)
        details["agent_queue"] = self.queue.qsize()
        self.publish("heartbeat", None, result="alive", details=details)

    def run(self) -> None:
        for entry in self.journal.unfinished():  # a killed run's orders first, in the order taken
            self.queue.put(str(entry["id"]))
        worker = threading.Thread(target=self.worker, name="sealbox-agent-orders", daemon=True)
        worker.start()
        observer = self._watch()
        try:
            self._loop()
        finally:
            self.stop.set()
            if observer is not None:
                observer.stop()
            if self.s.once:
                worker.join()

    def _watch(self) -> Any:
        if self.s.spool is None:
            return None
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        wake = self.wake

        class Nudge(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                wake.set()

        self.s.spool.mkdir(parents=True, exist_ok=True)
        observer = Observer()
        observer.schedule(Nudge(), str(self.s.spool), recursive=False)
        observer.daemon = True
        observer.start()
        return observer

    def _loop(self) -> None:
        interval_ns = int(self.s.interval * 1e9)
        beat_ns = int((self.s.heartbeat or self.s.interval) * 1e9)
        next_beat = next_check = now_ns()
        # The first poll comes at a random point of the first interval: a fleet restarted at
        # once (a patch day) does not ask the vault all in the same second.
        next_poll = now_ns() + (0 if self.s.once else int(random.uniform(0, 1) * interval_ns))
        while not self.stop.is_set():
            self.wake.clear()
            fresh = False
            if self.s.spool is not None:
                fresh = self.scan_spool()
            if self.s.vault is not None and now_ns() >= next_poll:
                try:
                    self.poll_vault()
                except SealboxError as exc:
                    log.warning("vault not polled", problem=exc.message)
                next_poll = now_ns() + int(interval_ns * random.uniform(0.8, 1.2))
            if self.s.once:
                self.queue.join()
                self.check_drift()
                self.heartbeat()
                return
            if now_ns() >= next_check:  # an isolation in force is checked every interval
                self.check_drift()
                next_check = now_ns() + interval_ns
            if now_ns() >= next_beat:
                self.heartbeat()
                next_beat = now_ns() + beat_ns
            wait = min(next_beat, next_check, next_poll if self.s.vault else next_check) - now_ns()
            if fresh:
                wait = min(wait, SETTLE_NS)
            self.wake.wait(max(0.05, wait / 1e9))


def _read_head(path: Path) -> bytes | None:
    """At most MAX_BYTES + 1 of a regular file (a 1 GB file costs one small read), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, size = [], 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
