"""/etc/resolv.conf, /etc/hosts and /etc/hostname for a container,
written into its directory and bind-mounted over the image's, as podman
does.  hosts is rewritten in place (same inode) when containers join or
leave the network, so the bind mounts of running containers see it."""

from __future__ import annotations

import ipaddress
import os

from runtime.core.errors import NetworkError

HOST_RESOLV = "/etc/resolv.conf"


def resolv_conf(dns: list[str], drop_loopback: bool) -> str:
    """The host's resolv.conf, without nameservers a container cannot reach
    (127.0.0.53 and friends live in the host's namespace); --dns replaces them."""
    for server in dns:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise NetworkError("--dns", f"{server!r} is not an IP address") from None
    try:
        with open(HOST_RESOLV) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    out, servers = [], []
    for line in lines:
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            try:
                loop = ipaddress.ip_address(words[1].split("%")[0]).is_loopback
            except ValueError:
                loop = False
            if not dns and not (drop_loopback and loop):
                servers.append(words[1])
            continue
        out.append(line)
    servers = dns or servers
    return "\n".join(out + [f"nameserver {s}" for s in servers]) + "\n"


def hosts(own: list[tuple[str, str]], others: list[tuple[str, str]], extra: list[tuple[str, str]]) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{ip}\t{names}" for names, ip in extra]
    lines += [f"{ip}\t{names}" for names, ip in own]
    lines += [f"{ip}\t{names}" for names, ip in others]
    return "\n".join(lines) + "\n"


def parse_add_host(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, ip = item.partition(":")
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise NetworkError("--add-host", f"{item!r}: expected NAME:IP") from None
        if not sep or not name:
            raise NetworkError("--add-host", f"{item!r}: expected NAME:IP")
        out.append((name, ip))
    return out


def write_in_place(path: str, text: str, create: bool = True) -> None:
    """Rewrite without replacing the inode: a bind mount of it keeps working.
    CREATE=False for other containers' files: one being removed right now
    must not get its file back (its directory would not empty)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | (os.O_CREAT if create else 0), 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.truncate()
