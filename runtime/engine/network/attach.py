"""Connect a container made from an image to its network, and undo it.

    attach:  netns -> (bridge mode) bridge, IP, veth, eth0, NAT, ports
             -> resolv.conf, hosts, hostname
    detach:  the same, in reverse; safe to call twice or after a partial attach

What was made is recorded in <container dir>/network.json before it is
made, so a crash at any point can be cleaned up by `husk system prune`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from runtime.core import trace
from runtime.core.errors import HuskError, NetworkError
from runtime.engine.network import files, links, networks, nft, scope

HOST_NETWORKS = ("none", "host")


@dataclass
class NetworkRequest:
    mode: str = "bridge"  # bridge | none | host | container:NAME | <network name>
    ports: list[str] = field(default_factory=list)
    publish_all: bool = False
    ip: str | None = None
    dns: list[str] = field(default_factory=list)
    add_hosts: list[str] = field(default_factory=list)


def parse_port(spec: str) -> tuple[str, int | None, int, str]:
    """[HOSTIP:]HOSTPORT:PORT[/tcp|udp], or PORT[/proto] (a free host port)."""
    body, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise NetworkError("--publish", f"{spec!r}: protocol must be tcp or udp")
    parts = body.rsplit(":", 2)
    try:
        if len(parts) == 1:
            host_ip, host_port, port = "", None, int(parts[0])
        elif len(parts) == 2:
            host_ip, host_port, port = "", int(parts[0]) if parts[0] else None, int(parts[1])
        else:
            host_ip, host_port, port = parts[0].strip("[]"), int(parts[1]) if parts[1] else None, int(parts[2])
    except ValueError:
        raise NetworkError("--publish", f"{spec!r}: expected [HOSTIP:]HOSTPORT:PORT[/tcp|udp]") from None
    for p in (host_port, port):
        if p is not None and not 0 < p < 65536:
            raise NetworkError("--publish", f"{spec!r}: port {p} out of range")
    if host_ip:
        import ipaddress

        try:
            if ipaddress.ip_address(host_ip).version != 4:
                raise ValueError
        except ValueError:
            raise NetworkError("--publish", f"{spec!r}: host address must be IPv4") from None
    return host_ip, host_port, port, proto


def parse_exposed(key: str) -> tuple[str, None, int, str]:
    """An image's ExposedPorts key, PORT[/tcp|udp]: the image says which
    container port, never which host address or port (-P picks a free one)."""
    body, _, proto = key.partition("/")
    proto = proto or "tcp"
    if not body.isdigit() or proto not in ("tcp", "udp") or not 0 < int(body) < 65536:
        raise NetworkError("image config", f"ExposedPorts {key!r}: must be PORT[/tcp|udp]")
    return "", None, int(body), proto


def _free_port(proto: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def _record_path(cdir: str) -> str:
    return os.path.join(cdir, "network.json")


def _save(cdir: str, record: dict) -> None:
    tmp = _record_path(cdir) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.rename(tmp, _record_path(cdir))


def load_record(cdir: str) -> dict | None:
    try:
        with open(_record_path(cdir)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def attach(store_root: str, cid: str, name: str, hostname: str, cdir: str, req: NetworkRequest,
           exposed: list[str], alive) -> dict[str, Any]:
    """Returns {"namespace": {...} or None, "mounts": [...]} for config.json."""
    record: dict[str, Any] = {"mode": req.mode, "id": cid, "name": name, "hostname": hostname}
    _save(cdir, record)
    try:
        return _attach(store_root, cid, name, hostname, cdir, req, exposed, alive, record)
    except BaseException:
        detach(store_root, cdir)
        raise


def _attach(store_root, cid, name, hostname, cdir, req, exposed, alive, record) -> dict[str, Any]:
    extra_hosts = files.parse_add_host(req.add_hosts)
    mode = req.mode
    namespace: dict | None = None
    own: list[tuple[str, str]] = [(hostname if hostname == name else f"{hostname} {name}", "127.0.1.1")]
    others: list[tuple[str, str]] = []
    if (req.ports or req.publish_all) and mode in HOST_NETWORKS + ("container",) or \
            (req.ports and mode.startswith("container:")):
        raise NetworkError("--publish", f"ports can only be published on a bridge network, not {mode!r}")
    if req.ip and (mode in HOST_NETWORKS or mode.startswith("container:")):
        raise NetworkError("--ip", f"an address can only be asked for on a bridge network, not {mode!r}")
    if mode == "host":
        resolv = files.resolv_conf(req.dns, drop_loopback=False)
        own = [(hostname, "127.0.1.1")]
    elif mode.startswith("container:"):
        target = _container_netns(store_root, mode.split(":", 1)[1])
        namespace = {"type": "network", "path": target}
        resolv = files.resolv_conf(req.dns, drop_loopback=True)
    elif mode == "none":
        record["netns"] = os.path.join(scope.netns_dir(store_root), cid)
        _save(cdir, record)
        namespace = {"type": "network", "path": links.create_netns(record["netns"])}
        resolv = files.resolv_conf(req.dns, drop_loopback=True)
    else:
        net = networks.load(store_root, networks.DEFAULT_NETWORK if mode == "bridge" else mode)
        record["network"] = net.name
        record["netns"] = os.path.join(scope.netns_dir(store_root), cid)
        record["veth"] = f"veth{cid[:10]}"
        _save(cdir, record)
        netns = links.create_netns(record["netns"])
        namespace = {"type": "network", "path": netns}
        from runtime.engine.network import ipam

        ip = ipam.allocate(store_root, net, cid, req.ip, alive=alive)
        record["ip"] = ip
        _save(cdir, record)
        from pyroute2 import IPRoute  # only bridge networks need netlink

        with nft.locked(), IPRoute() as ipr:
            links.ensure_bridge(ipr, net.bridge, net.gateway, net.prefixlen, net.mtu)
            nft.add_network(net.name, net.bridge, net.subnet)
        with IPRoute() as ipr:
            links.add_veth(ipr, record["veth"], net.bridge, netns, net.mtu, scope.veth_alias(store_root, cid))
        links.configure_eth0(netns, ip, net.prefixlen, net.gateway)
        trace.step("network", "network", f"netlink: veth pair {record['veth']} on bridge {net.bridge} <-> eth0 in "
                   f"{netns}, address {ip}/{net.prefixlen}, default route via {net.gateway}", who="engine")
        ports = [parse_port(p) for p in req.ports] + [parse_exposed(p) for p in (exposed if req.publish_all else [])]
        published = []
        for host_ip, host_port, port, proto in ports:
            published.append((host_ip, host_port or _free_port(proto), proto, ip, port))
        record["ports"] = published
        _save(cdir, record)
        with nft.locked():
            nft.add_ports(scope.container_tag(store_root, cid), published)
        own = [(hostname if hostname == name else f"{hostname} {name}", ip)]
        others = _members(store_root, net, exclude=cid)
        resolv = files.resolv_conf(req.dns, drop_loopback=True)
    paths = {dst: os.path.join(cdir, dst.rsplit("/", 1)[1]) for dst in ("/etc/resolv.conf", "/etc/hosts",
                                                                           "/etc/hostname")}
    files.write_in_place(paths["/etc/resolv.conf"], resolv)
    files.write_in_place(paths["/etc/hosts"], files.hosts(own, others, extra_hosts))
    files.write_in_place(paths["/etc/hostname"], hostname + "\n")
    record["extra_hosts"] = extra_hosts
    record["done"] = True
    _save(cdir, record)
    if record.get("network"):
        _refresh_hosts(store_root, record["network"])
    mounts = [{"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rw"]}
              for dst, src in paths.items()]
    return {"namespace": namespace, "mounts": mounts, "record": record}


def _container_netns(store_root: str, name: str) -> str:
    """The network namespace of the container NAME names (id, prefix or name)."""
    from runtime.engine import record as records

    found = records.find(store_root, name)
    rec = load_record(os.path.join(store_root, "containers", found.id)) or {}
    if rec.get("netns") and os.path.exists(rec["netns"]):
        return rec["netns"]
    raise NetworkError("--network", f"container {name!r} has no network namespace of its own")


def _members(store_root: str, net, exclude: str = "") -> list[tuple[str, str]]:
    from runtime.engine.network import ipam

    out = []
    for ip, owner in ipam.allocations(store_root, net).items():
        if owner == exclude:
            continue
        rec = load_record(os.path.join(store_root, "containers", owner)) or {}
        if rec.get("done"):
            names = rec["hostname"] if rec["hostname"] == rec["name"] else f"{rec['hostname']} {rec['name']}"
            out.append((names, ip))
    return out


def _refresh_hosts(store_root: str, network_name: str) -> None:
    """Rewrite every member's /etc/hosts so names resolve on the network."""
    net = networks.load(store_root, network_name)
    from runtime.engine.network import ipam

    for ip, owner in ipam.allocations(store_root, net).items():
        cdir = os.path.join(store_root, "containers", owner)
        rec = load_record(cdir) or {}
        if not rec.get("done"):
            continue
        names = rec["hostname"] if rec["hostname"] == rec["name"] else f"{rec['hostname']} {rec['name']}"
        text = files.hosts([(names, ip)], _members(store_root, net, exclude=owner),
                           [tuple(x) for x in rec.get("extra_hosts", [])])
        with contextlib.suppress(OSError):
            files.write_in_place(os.path.join(cdir, "hosts"), text, create=False)


def detach(store_root: str, cdir: str) -> None:
    """Undo attach: rules, veth, namespace, address; then tell the others."""
    rec = load_record(cdir)
    if rec is None:
        return
    cid = rec["id"]
    with nft.locked():
        if rec.get("ports"):
            nft.remove_tagged((scope.container_tag(store_root, cid),))
    if rec.get("veth"):
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            links.delete_link(ipr, rec["veth"])
    if rec.get("netns"):
        links.remove_netns(rec["netns"])
    if rec.get("network"):
        from runtime.engine.network import ipam

        with contextlib.suppress(HuskError):
            net = networks.load(store_root, rec["network"])
            ipam.release(store_root, net, cid)
            rec["done"] = False
    os.unlink(_record_path(cdir))
    if rec.get("network"):
        with contextlib.suppress(HuskError):
            _refresh_hosts(store_root, rec["network"])


def rename(store_root: str, cdir: str, name: str) -> None:
    """`husk rename`: the container's new name resolves on its network
    (every member's /etc/hosts is written again, its own too)."""
    rec = load_record(cdir)
    if rec is None:
        return
    rec["name"] = name
    _save(cdir, rec)
    if rec.get("network"):
        with contextlib.suppress(HuskError):
            _refresh_hosts(store_root, rec["network"])
