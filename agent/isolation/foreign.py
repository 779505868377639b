"""Other firewall managers on the host: detected and reported, never modified.

sealbox's drop happens in its own chains ahead of theirs, so their accepts cannot reopen what is
closed; but the operator must know they are there (firewalld or ufw reloads, Docker publishing
ports and forwarding for containers) to judge the result.
"""

from __future__ import annotations

from pathlib import Path

from agent.isolation import nftables
from agent.isolation._run import have, run

_DAEMONS = {"firewalld": "firewalld", "dockerd": "Docker", "containerd": "containerd"}


def detect() -> list[str]:
    """One line per finding, e.g. `firewalld running`, `nft table inet firewalld`."""
    import psutil  # here, not at start-up: only `isolate` looks

    found: list[str] = []
    names = set()
    for proc in psutil.process_iter(["name"]):
        name = proc.info.get("name") or ""
        if name in _DAEMONS:
            names.add(_DAEMONS[name])
    found += [f"{n} running" for n in sorted(names)]
    for table in nftables.foreign_tables():
        found.append(f"nft table {table}")
    ufw_conf = Path("/etc/ufw/ufw.conf")
    try:
        if "ENABLED=yes" in ufw_conf.read_text(encoding="utf-8", errors="replace"):
            found.append("ufw enabled (/etc/ufw/ufw.conf)")
    except OSError:
        pass
    for tool in ("iptables-save", "ip6tables-save"):
        if not have(tool):
            continue
        out = run([tool], check=False).stdout
        chains = sorted(
            {
                line.split()[0][1:]
                for line in out.splitlines()
                if line.startswith(":") and (line.startswith((":DOCKER", ":ufw", ":f2b", ":KUBE")))
            }
        )
        if chains:
            found.append(f"{tool}: chains {', '.join(chains)}")
    return found
