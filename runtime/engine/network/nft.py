"""husk's own nftables table, `inet husk`, through the nft command.

    chain prerouting   nat, dstnat:  published ports, packets from elsewhere
    chain output       nat, dstnat:  published ports, connections from the host itself
    chain postrouting  nat, srcnat:  masquerade for each network's subnet, and for
                                     host-to-127.0.0.1 connections sent into a bridge
    chain forward      filter:       let each bridge's traffic through, but not
                                     from one husk bridge to another
    chain input        filter:       drop packets from a bridge to 127.0.0.0/8 that
                                     no published port DNATed (CVE-2020-8558)

Every rule carries a comment naming what it belongs to (`net:NAME` or
`ctr:ID`), so removing a container removes exactly its rules, as bocker
tags its iptables rules.  husk never lists, flushes or edits any other
table.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
from collections.abc import Iterator

from runtime.core.errors import NetworkError
from runtime.core.paths import NFT_LOCK as LOCK

TABLE = "husk"
FAMILY = "inet"
_SKELETON = f"""add table {FAMILY} {TABLE}
add chain {FAMILY} {TABLE} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
add chain {FAMILY} {TABLE} output {{ type nat hook output priority -100; policy accept; }}
add chain {FAMILY} {TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
add chain {FAMILY} {TABLE} forward {{ type filter hook forward priority filter; policy accept; }}
add chain {FAMILY} {TABLE} input {{ type filter hook input priority filter; policy accept; }}
"""


def nft(script: str) -> str:
    try:
        p = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
    except FileNotFoundError:
        raise NetworkError("nftables", "the nft command is missing: install Debian's nftables package") from None
    if p.returncode != 0:
        raise NetworkError("nftables", p.stderr.strip().splitlines()[0] if p.stderr.strip() else "nft failed")
    return p.stdout




@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One writer at a time: checking for a rule and adding it is not
    atomic.  The table is host-wide, so is the lock (whatever the store)."""
    os.makedirs(os.path.dirname(LOCK), mode=0o700, exist_ok=True)
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def rules() -> list[dict]:
    """husk's rules as nft's JSON objects (with handles); [] if no table."""
    p = subprocess.run(["nft", "-j", "-a", "list", "table", FAMILY, TABLE], capture_output=True, text=True)
    if p.returncode != 0:
        return []
    return [o["rule"] for o in json.loads(p.stdout).get("nftables", []) if "rule" in o]


def table_exists() -> bool:
    return subprocess.run(["nft", "list", "table", FAMILY, TABLE], capture_output=True).returncode == 0


def tags() -> set[str]:
    return {r.get("comment", "") for r in rules()}


def add_network(name: str, bridge: str, subnet: str) -> None:
    tag = f"net:{name}"
    if tag in tags():
        return
    # Networks are isolated from each other, as docker's bridges are: the
    # host would otherwise route between its bridges.
    isolate = (f'insert rule {FAMILY} {TABLE} forward iifname "{bridge}" oifname != "{bridge}" '
               f'oifname "husk*" drop comment "{tag}"\n')
    nft(_SKELETON + isolate + "\n".join(f'add rule {FAMILY} {TABLE} {chain} {rule} comment "{tag}"' for chain, rule in (
        ("postrouting", f"ip saddr {subnet} ip daddr != {subnet} masquerade"),
        # A host connection to 127.0.0.1:PORT, DNATed into the bridge, needs
        # a source the container can answer (route_localnet lets it leave).
        ("postrouting", f'oifname "{bridge}" ip saddr 127.0.0.0/8 masquerade'),
        ("forward", f'iifname "{bridge}" accept'),
        # route_localnet (needed for host -> 127.0.0.1:PORT into a bridge)
        # also makes the host accept a frame a container addresses to the
        # bridge's MAC with a 127.x destination: its services on loopback
        # would be reachable (CVE-2020-8558).  Drop what no DNAT made, as
        # kube-proxy's KUBE-FIREWALL does.
        ("input", f'iifname "{bridge}" ip daddr 127.0.0.0/8 ct status & dnat == 0 drop'),
        ("forward", f'oifname "{bridge}" ct state established,related accept'),
    )) + "\n")


def add_ports(tag: str, ports: list[tuple[str, int, str, str, int]]) -> None:
    """PORTS: (host ip or "", host port, proto, container ip, container port);
    TAG: the container's (scope.container_tag)."""
    if not ports:
        return
    lines = [_SKELETON]
    for host_ip, host_port, proto, cip, cport in ports:
        match = f"ip daddr {host_ip}" if host_ip else "fib daddr type local"
        for chain in ("prerouting", "output"):
            lines.append(f'add rule {FAMILY} {TABLE} {chain} {match} {proto} dport {host_port} '
                         f'dnat ip to {cip}:{cport} comment "{tag}"')
    nft("\n".join(lines) + "\n")


def remove_tagged(tags: tuple[str, ...]) -> int:
    """Remove the rules whose tag is one of TAGS, exactly: `net:aud` must
    never take `net:audx`'s rules with it."""
    doomed = [r for r in rules() if r.get("comment", "") in tags]
    if doomed:
        nft("".join(f"delete rule {FAMILY} {TABLE} {r['chain']} handle {r['handle']}\n" for r in doomed))
    return len(doomed)


def delete_table() -> None:
    if table_exists():
        nft(f"delete table {FAMILY} {TABLE}\n")
