"""Network namespaces, bridges and veth pairs.

A container's network namespace is made by husk before the container
(podman and CNI do the same): a thread unshares CLONE_NEWNET, the
namespace is bind-mounted under /run/husk-network/netns/ to keep it alive, and
the bundle's config.json names that path.  The runtime core then just
joins it.  Links are made through pyroute2's IPRoute, in the host and,
with IPRoute(netns=...), inside the namespace.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import threading

from runtime.core.errors import NetworkError
from runtime.core.linux import syscalls
from runtime.core.paths import SAVED_IP_FORWARD
from runtime.engine.network.scope import BRIDGE_ALIAS

MS_BIND = 4096
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def _lo_up() -> None:
    """ip link set lo up, with one ioctl: no netlink library needed for --network none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def create_netns(path: str) -> str:
    """A new network namespace with lo up, kept by a bind mount on PATH
    (in the store's scope.netns_dir)."""
    for attempt in range(3):
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        try:
            with open(path, "x"):
                pass
            break
        except FileNotFoundError:  # the store's dir went with its last namespace meanwhile
            if attempt == 2:
                raise
    errors: list[BaseException] = []

    def in_thread() -> None:
        # unshare(2) moves only this thread into the new namespace.
        try:
            syscalls.unshare(syscalls.CLONE_NEWNET)
            syscalls.mount("/proc/thread-self/ns/net", path, "", MS_BIND)
            _lo_up()
            # No IPv6 router advertisements: a container could otherwise
            # hand its neighbours routes (and eth0, made later, takes
            # "default").  /proc/sys/net is this thread's new namespace's.
            _no_router_advertisements(("all", "default", "lo"))
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    if errors:
        remove_netns(path)
        raise NetworkError("network namespace", str(errors[0]))
    return path


def remove_netns(path: str) -> None:
    if os.path.ismount(path):
        syscalls.umount(path, syscalls.MNT_DETACH)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    try:
        os.rmdir(os.path.dirname(path))  # the store's directory, once its last namespace is gone
    except OSError:
        pass


def bridge_ports(ipr, bridge: str) -> list[int]:
    """Indexes of the links enslaved to BRIDGE (none if it is gone)."""
    idx = ipr.link_lookup(ifname=bridge)
    if not idx:
        return []
    return [link["index"] for link in ipr.get_links() if link.get_attr("IFLA_MASTER") == idx[0]]


def link_alias(ipr, index: int) -> str:
    links = ipr.get_links(index)
    return (links[0].get_attr("IFLA_IFALIAS") or "") if links else ""


def _no_router_advertisements(interfaces) -> None:
    for name in interfaces:
        path = f"/proc/sys/net/ipv6/conf/{name}/accept_ra"
        if os.path.exists(path):  # no IPv6 on this kernel: nothing to turn off
            with open(path, "w") as f:
                f.write("0")


def _sysctl(key: str, value: str) -> None:
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(value)


def ensure_bridge(ipr, bridge: str, gateway: str, prefixlen: int, mtu: int) -> None:
    """The network's bridge with the gateway address, up; made once."""
    if not ipr.link_lookup(ifname=bridge):
        try:
            ipr.link("add", ifname=bridge, kind="bridge", mtu=mtu)
            ipr.link("set", index=ipr.link_lookup(ifname=bridge)[0], ifalias=BRIDGE_ALIAS)
        except Exception as e:  # NetlinkError: EEXIST from a concurrent husk run
            if getattr(e, "code", 0) != 17:
                raise
    idx = ipr.link_lookup(ifname=bridge)[0]
    if link_alias(ipr, idx) != BRIDGE_ALIAS:
        # Never take over (address, enslave to, later delete) an interface
        # the host made: `--bridge eth0` must not end with eth0 gone.
        raise NetworkError("network", f"{bridge} exists and was not made by husk: choose another --bridge")
    if not any(a.get_attr("IFA_ADDRESS") == gateway for a in ipr.get_addr(index=idx, family=socket.AF_INET)):
        try:
            ipr.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
        except Exception as e:
            if getattr(e, "code", 0) != 17:
                raise
    ipr.link("set", index=idx, state="up")
    # Packets from the containers are forwarded (egress, NAT); a host
    # connection to 127.0.0.1:PORT DNATed into the bridge keeps its
    # loopback source until masquerade, which route_localnet allows.
    _sysctl(f"net.ipv4.conf.{bridge}.forwarding", "1")
    _sysctl(f"net.ipv4.conf.{bridge}.route_localnet", "1")
    _no_router_advertisements((bridge,))  # the host takes no routes from its containers
    # Replies to NATed egress come in on the uplink, so forwarding must be
    # on there too (docker does the same).  The host's old value is kept
    # and put back when the last husk bridge goes (restore_ip_forward).
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        old = f.read().strip()
    if old != "1":
        os.makedirs(os.path.dirname(SAVED_IP_FORWARD), exist_ok=True)
        with open(SAVED_IP_FORWARD, "w") as f:
            f.write(old)
        _sysctl("net.ipv4.ip_forward", "1")


def add_veth(ipr, host_name: str, bridge: str, netns: str, mtu: int, alias: str) -> None:
    """A veth pair: HOST_NAME on the bridge, its peer made directly in the
    container's namespace as eth0 (no rename or move afterwards).  ALIAS
    (ifalias) names its store and container, for scoped clean-up."""
    bidx = ipr.link_lookup(ifname=bridge)[0]
    ipr.link("add", ifname=host_name, kind="veth", mtu=mtu, peer={"ifname": "eth0", "net_ns_fd": netns, "mtu": mtu})
    idx = ipr.link_lookup(ifname=host_name)[0]
    ipr.link("set", index=idx, ifalias=alias)
    ipr.link("set", index=idx, master=bidx, state="up")


def configure_eth0(netns: str, address: str, prefixlen: int, gateway: str) -> None:
    from pyroute2 import IPRoute

    with IPRoute(netns=netns) as ns:
        idx = ns.link_lookup(ifname="eth0")[0]
        ns.addr("add", index=idx, address=address, prefixlen=prefixlen)
        ns.link("set", index=idx, state="up")
        ns.route("add", dst="default", gateway=gateway)


def delete_link(ipr, name: str) -> None:
    idx = ipr.link_lookup(ifname=name)
    if idx:
        ipr.link("del", index=idx[0])


def restore_ip_forward(ipr) -> None:
    """Put net.ipv4.ip_forward back once no husk bridge is left."""
    if any((link.get_attr("IFLA_IFNAME") or "").startswith("husk") for link in ipr.get_links()):
        return
    try:
        with open(SAVED_IP_FORWARD) as f:
            old = f.read().strip()
    except FileNotFoundError:
        return
    _sysctl("net.ipv4.ip_forward", old)
    os.unlink(SAVED_IP_FORWARD)
