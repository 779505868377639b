"""The firewall backends behind one interface, and the one place where a backend is chosen.

Linux backends apply rules (`nft`, `iptables`, `iptables-nft`, `iptables-legacy`); the Windows
and macOS backends generate a plan to review (`--dry-run --platform`). The engine only ever
talks to a `Backend` or a `PlanBackend` obtained from `choose()` / `plan_backend()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from agent.isolation import iptables, macos, nftables, windows
from manifest.errors import IsolationError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from agent.isolation.model import Policy
    from agent.isolation.plan import Plan


class Backend(Protocol):
    """A Linux firewall that sealbox loads its own rules into and takes them out of again."""

    name: str

    def available(self) -> bool:
        """Its tools are installed."""
        ...

    def render(self, policy: Policy) -> str:
        """The exact ruleset text for `policy` (what is loaded, hashed and recorded)."""
        ...

    def check(self, ruleset: str) -> None:
        """The kernel validates `ruleset` without committing it (IsolationError if refused)."""
        ...

    def apply(self, ruleset: str) -> None:
        """Load `ruleset` (refused when sealbox's rules are already loaded)."""
        ...

    def present(self) -> bool:
        """Some of sealbox's rules are loaded."""
        ...

    def listing(self) -> str | None:
        """sealbox's loaded rules, normalized (None when they are not all there)."""
        ...

    def chains_present(self) -> list[str]:
        """Which of sealbox's chains are loaded."""
        ...

    def remove(self) -> bool:
        """Take out sealbox's rules, only those; whether there were any."""
        ...

    def before_apply(self) -> dict[str, Any]:
        """What `tidy` needs to know about the ruleset before loading (kept in the state)."""
        ...

    def tidy(self, before: dict[str, Any]) -> list[str]:
        """After `remove`: delete what loading created as a side effect (empty base chains and
        tables that were not there before); returns what was deleted."""
        ...

    def persist_files(self, ruleset: str) -> dict[str, str]:
        """Files (name -> text) the boot unit loads again."""
        ...

    def persist_command(self, directory: Path) -> list[str]:
        """The command that loads the persisted files from `directory` (idempotent)."""
        ...


class PlanBackend(Protocol):
    """A platform sealbox cannot apply to from here: it writes the plan to run there."""

    name: str

    def plan(self, policy: Policy) -> Plan:
        """The scripts that isolate, check and restore with the same semantics."""
        ...


class WindowsPlan:
    name = "windows"

    def plan(self, policy: Policy) -> Plan:
        return windows.plan(policy)


class MacosPlan:
    name = "macos"

    def plan(self, policy: Policy) -> Plan:
        return macos.plan(policy)


# Names the user can pick with --backend; "auto" tries AUTO_ORDER and takes the first available.
LINUX: dict[str, Callable[[], Backend]] = {
    "nft": nftables.NftBackend,
    "iptables": iptables.IptablesBackend,
    "iptables-nft": iptables.IptablesNftBackend,
    "iptables-legacy": iptables.IptablesLegacyBackend,
}
AUTO_ORDER = ("nft", "iptables")
PLANS: dict[str, Callable[[], PlanBackend]] = {"windows": WindowsPlan, "macos": MacosPlan}
CHOICES = ("auto", *LINUX)
PLATFORMS = ("linux", *PLANS)


def choose(name: str) -> Backend:
    """The backend called `name`, or for "auto" the first one whose tools are installed."""
    if name == "auto":
        for candidate in AUTO_ORDER:
            backend = LINUX[candidate]()
            if backend.available():
                return backend
        raise IsolationError("neither nft nor iptables-restore is installed", hint="install nftables")
    factory = LINUX.get(name)
    if factory is None:
        raise UsageError(f"unknown backend {name!r}; choose one of {', '.join(CHOICES)}")
    return factory()


def plan_backend(platform: str) -> PlanBackend:
    factory = PLANS.get(platform)
    if factory is None:
        raise UsageError(f"no plan backend for {platform}; choose one of {', '.join(PLANS)}")
    return factory()


def installed() -> list[Backend]:
    """Every Linux backend whose tools are installed (to look for sealbox rules in all of them)."""
    return [b for b in (factory() for factory in LINUX.values()) if b.available()]
