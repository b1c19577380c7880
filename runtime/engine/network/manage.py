"""Whole-network operations: inspect, remove, prune, and cleaning up
after containers that died without `husk rm` (system prune)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict
from typing import Any

from runtime.core.errors import NetworkError
from runtime.engine.network import ipam, links, networks, nft, scope


def inspect(store_root: str, name: str) -> dict[str, Any]:
    net = networks.load(store_root, name)
    from runtime.engine.network.attach import load_record

    containers = {}
    for ip, owner in ipam.allocations(store_root, net).items():
        rec = load_record(os.path.join(store_root, "containers", owner)) or {}
        containers[owner] = {"name": rec.get("name", ""), "ip": ip}
    return dict(asdict(net), containers=containers)


def remove(store_root: str, name: str) -> None:
    net = networks.load(store_root, name)
    if ipam.allocations(store_root, net):
        raise NetworkError("network rm", f"{name}: containers are still connected (husk network inspect {name})")
    _teardown(store_root, net)
    if name != networks.DEFAULT_NETWORK:
        networks.remove(store_root, name)
    with contextlib.suppress(OSError):
        import shutil

        shutil.rmtree(os.path.join(networks.networks_dir(store_root), name))


def _teardown(store_root: str, net) -> None:
    from pyroute2 import IPRoute

    with nft.locked(), IPRoute() as ipr:
        # The bridge and its rules are host-wide: another store's network
        # of the same name may have containers on it.  Leave it to them.
        if links.bridge_ports(ipr, net.bridge):
            return
        nft.remove_tagged((f"net:{net.name}",))
        links.delete_link(ipr, net.bridge)
        links.restore_ip_forward(ipr)
        if not nft.rules():
            nft.delete_table()


def prune(store_root: str) -> list[str]:
    """Remove every network no container uses (husk's table and bridges
    with them); the default network's definition stays."""
    removed = []
    for net in networks.listing(store_root):
        if not ipam.allocations(store_root, net):
            remove(store_root, net.name)
            removed.append(net.name)
    with nft.locked():
        if not nft.rules():
            nft.delete_table()
    return removed


def stale(store_root: str, alive) -> dict[str, int]:
    """After a crash: free what containers that no longer exist hold -
    addresses, nftables rules, veths, namespaces."""
    out = {"addresses": 0, "rules": 0, "links": 0, "netns": 0}
    for net in networks.listing(store_root):
        out["addresses"] += ipam.reclaim(store_root, net, alive)
    # Only this store's: another store's containers are not "dead" here.
    with nft.locked():
        dead = sorted({r["comment"] for r in nft.rules()
                       if (c := scope.container_of_tag(store_root, r.get("comment", ""))) and not alive(c)})
        if dead:
            out["rules"] = nft.remove_tagged(tuple(dead))
    netns_dir = scope.netns_dir(store_root)
    if os.path.isdir(netns_dir):
        for name in os.listdir(netns_dir):
            if not alive(name):
                links.remove_netns(os.path.join(netns_dir, name))
                out["netns"] += 1
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        for link in ipr.get_links():
            owner = scope.container_of_alias(store_root, link.get_attr("IFLA_IFALIAS") or "")
            if owner and not alive(owner):
                ipr.link("del", index=link["index"])
                out["links"] += 1
    return out
