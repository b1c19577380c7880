"""IP address management: one file per allocated address, as CNI's
host-local plugin keeps them.

    <store>/networks/<name>/ips/<ip>   holds the container id
    <store>/networks/<name>/lock       flock(2): one allocator at a time

An address is taken by creating its file with O_EXCL under the lock, so
no address is ever given twice, also under many concurrent `husk run`s.
Addresses of containers whose record is gone (a crash before cleanup)
are reclaimed when the pool runs dry, and by `husk system prune`.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
from collections.abc import Callable, Iterator

from runtime.core.errors import NetworkError
from runtime.engine.network.networks import Network, networks_dir


def _dir(store_root: str, net: Network) -> str:
    return os.path.join(networks_dir(store_root), net.name, "ips")


@contextlib.contextmanager
def _locked(store_root: str, net: Network) -> Iterator[str]:
    d = _dir(store_root, net)
    os.makedirs(d, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(os.path.dirname(d), "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield d
    finally:
        os.close(fd)


def allocations(store_root: str, net: Network) -> dict[str, str]:
    d = _dir(store_root, net)
    out = {}
    for ip in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        with contextlib.suppress(OSError), open(os.path.join(d, ip)) as f:
            out[ip] = f.read().strip()
    return out


def allocate(store_root: str, net: Network, owner: str, wanted: str | None = None,
             alive: Callable[[str], bool] | None = None) -> str:
    with _locked(store_root, net) as d:
        if wanted:
            try:
                ip = ipaddress.IPv4Address(wanted)
            except ValueError:
                raise NetworkError("--ip", f"{wanted!r} is not an IPv4 address") from None
            if ip not in net.net or ip in (net.net.network_address, net.net.broadcast_address,
                                           ipaddress.IPv4Address(net.gateway)):
                raise NetworkError("--ip", f"{ip} is not a free host address of {net.name} ({net.subnet})")
            if not _take(d, str(ip), owner):
                if alive and not alive(allocations(store_root, net).get(str(ip), "")):
                    os.unlink(os.path.join(d, str(ip)))
                    if _take(d, str(ip), owner):
                        return str(ip)
                raise NetworkError("--ip", f"{ip} is already in use on {net.name}")
            return str(ip)
        for attempt in range(2):
            for ip in _candidates(net, d):
                if _take(d, ip, owner):
                    return ip
            if attempt == 0 and alive:
                _reclaim(d, alive)
        raise NetworkError("network", f"{net.name}: no free address left in {net.subnet}")


def _candidates(net: Network, d: str) -> Iterator[str]:
    """Addresses after the last one handed out, wrapping round (host-local's
    order), so a just-freed address is not reused at once."""
    gw = ipaddress.IPv4Address(net.gateway)
    hosts = [h for h in net.net.hosts() if h != gw] if net.net.num_addresses <= 65536 else []
    taken = set(os.listdir(d))
    last = _read(os.path.join(d, "..", "last"))
    start = 0
    if last:
        with contextlib.suppress(ValueError):
            start = hosts.index(ipaddress.IPv4Address(last)) + 1
    for i in range(len(hosts)):
        ip = str(hosts[(start + i) % len(hosts)])
        if ip not in taken:
            yield ip


def _take(d: str, ip: str, owner: str) -> bool:
    try:
        fd = os.open(os.path.join(d, ip), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(owner)
    with open(os.path.join(d, "..", "last"), "w") as f:
        f.write(ip)
    return True


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _reclaim(d: str, alive: Callable[[str], bool]) -> int:
    n = 0
    for ip in os.listdir(d):
        owner = _read(os.path.join(d, ip))
        # Empty: its allocator was killed between O_EXCL and the write (we
        # hold the lock it held, so it is not still writing).
        if not owner or not alive(owner):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(d, ip))
                n += 1
    return n


def release(store_root: str, net: Network, owner: str) -> None:
    with _locked(store_root, net) as d:
        for ip in os.listdir(d):
            if _read(os.path.join(d, ip)) == owner:
                os.unlink(os.path.join(d, ip))


def reclaim(store_root: str, net: Network, alive: Callable[[str], bool]) -> int:
    with _locked(store_root, net) as d:
        return _reclaim(d, alive)
