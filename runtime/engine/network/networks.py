"""Network definitions: a name, a Linux bridge and an IPv4 subnet.

    <store>/networks/<name>.json      the definition
    <store>/networks/<name>/ips/<ip>  one file per allocated address (ipam.py)

The default network `husk` (bridge husk0) is created on first use.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
from dataclasses import asdict, dataclass

from runtime.core.errors import NetworkError
from runtime.core.paths import StoreLayout

DEFAULT_NETWORK = "husk"
DEFAULT_BRIDGE = "husk0"
DEFAULT_SUBNET = os.environ.get("HUSK_DEFAULT_SUBNET", "10.77.0.0/16")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")


@dataclass
class Network:
    name: str
    bridge: str
    subnet: str
    gateway: str
    mtu: int = 1500

    @property
    def net(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def prefixlen(self) -> int:
        return self.net.prefixlen


def networks_dir(store_root: str) -> str:
    return StoreLayout(store_root).networks


def _path(store_root: str, name: str) -> str:
    return os.path.join(networks_dir(store_root), f"{name}.json")


def load(store_root: str, name: str) -> Network:
    try:
        with open(_path(store_root, name)) as f:
            return Network(**json.load(f))
    except FileNotFoundError:
        if name == DEFAULT_NETWORK:
            return create(store_root, DEFAULT_NETWORK, DEFAULT_SUBNET, bridge=DEFAULT_BRIDGE, exist_ok=True)
        raise NetworkError("network", f"{name!r}: no such network (husk network create {name})") from None


def listing(store_root: str) -> list[Network]:
    """Every network, the default one first (made here if it is new)."""
    default = load(store_root, DEFAULT_NETWORK)
    return [default] + [n for n in _defined(store_root) if n.name != DEFAULT_NETWORK]


def _defined(store_root: str) -> list[Network]:
    out = []
    try:
        names = sorted(os.listdir(networks_dir(store_root)))
    except FileNotFoundError:
        return []
    for n in names:
        if n.endswith(".json"):
            with open(os.path.join(networks_dir(store_root), n)) as f:
                out.append(Network(**json.load(f)))
    return out


def _host_routes() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks the host already routes (a new subnet must not
    overlap them), except through husk's own bridges."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        routes = ipr.get_routes(family=2, table=254)  # before the links: every route's link is then known
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        out = []
        for r in routes:
            dst = r.get_attr("RTA_DST")
            if dst and r["dst_len"] and not (names.get(r.get_attr("RTA_OIF")) or "").startswith("husk"):
                out.append(ipaddress.IPv4Network(f"{dst}/{r['dst_len']}", strict=False))
        return out


def create(store_root: str, name: str, subnet: str | None = None, *, bridge: str | None = None,
           gateway: str | None = None, mtu: int = 1500, exist_ok: bool = False) -> Network:
    if not _NAME.match(name):
        raise NetworkError("network", f"{name!r}: use letters, digits and _ . - (up to 64)")
    os.makedirs(networks_dir(store_root), mode=0o700, exist_ok=True)
    # One creator at a time: the overlap checks below read the others.
    fd = os.open(os.path.join(networks_dir(store_root), "networks.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return _create(store_root, name, subnet, bridge, gateway, mtu, exist_ok)
    finally:
        os.close(fd)


def _create(store_root: str, name: str, subnet: str | None, bridge: str | None, gateway: str | None, mtu: int,
            exist_ok: bool) -> Network:
    if os.path.exists(_path(store_root, name)):
        if exist_ok:
            return load(store_root, name)
        raise NetworkError("network", f"{name!r} already exists")
    existing = _defined(store_root)
    if subnet is None:
        subnet = _free_subnet(existing)
    try:
        net = ipaddress.IPv4Network(subnet)
    except ValueError as e:
        raise NetworkError("--subnet", f"{subnet!r}: {e}") from None
    if net.prefixlen > 30:
        raise NetworkError("--subnet", f"{subnet}: too small (at most /30)")
    for other in existing:
        if other.net.overlaps(net):
            raise NetworkError("--subnet", f"{subnet} overlaps network {other.name} ({other.subnet})")
    for route in _host_routes():
        if route.overlaps(net) and not route.prefixlen == 0:
            raise NetworkError("--subnet", f"{subnet} overlaps the host's route to {route}")
    gw = ipaddress.IPv4Address(gateway) if gateway else net.network_address + 1
    if gw not in net or gw in (net.network_address, net.broadcast_address):
        raise NetworkError("--gateway", f"{gw} is not a host address of {subnet}")
    if bridge is None:
        bridge = DEFAULT_BRIDGE if name == DEFAULT_NETWORK else f"husk-{name}"[:15]
    if len(bridge) > 15:
        raise NetworkError("--bridge", f"{bridge!r}: interface names have at most 15 characters")
    if any(n.bridge == bridge for n in existing):
        raise NetworkError("--bridge", f"{bridge} is used by another network")
    network = Network(name, bridge, str(net), str(gw), mtu)
    tmp = f"{_path(store_root, name)}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(asdict(network), f, indent=1)
    os.rename(tmp, _path(store_root, name))
    return network


def _free_subnet(existing: list[Network]) -> str:
    routes = _host_routes()
    for third in range(78, 255):
        candidate = ipaddress.IPv4Network(f"10.{third}.0.0/24")
        if not any(n.net.overlaps(candidate) for n in existing) and \
                not any(r.overlaps(candidate) and r.prefixlen for r in routes):
            return str(candidate)
    raise NetworkError("network", "no free 10.x.0.0/24 subnet left: give --subnet")


def remove(store_root: str, name: str) -> None:
    os.unlink(_path(store_root, name))
