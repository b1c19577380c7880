"""Names that tie host-wide network resources to one store.

Network namespaces, veths and nftables rules live in host-wide name
spaces, but each belongs to a container of one store (`--storage-root`).
Clean-up after a crash (`husk system prune`) must touch only its own
store's: so each carries the store's key, a short hash of its path.

    netns   /run/husk-network/netns/<key>/<id>   (outside any OCI --root:
                                                    `husk list` must not see it)
    veth    IFLA_IFALIAS "husk:<key>:<container id>"
    rules   comment "ctr:<key>:<container id>"
"""

from __future__ import annotations

import hashlib
import os

from runtime.core.paths import NETNS_BASE


def store_key(store_root: str) -> str:
    return hashlib.sha256(os.path.realpath(store_root).encode()).hexdigest()[:12]


def netns_dir(store_root: str) -> str:
    return os.path.join(NETNS_BASE, store_key(store_root))


def container_tag(store_root: str, cid: str) -> str:
    return f"ctr:{store_key(store_root)}:{cid}"


def container_of_tag(store_root: str, tag: str) -> str | None:
    """The container id in one of this store's rule tags, else None."""
    prefix = f"ctr:{store_key(store_root)}:"
    return tag[len(prefix):] if tag.startswith(prefix) else None


def veth_alias(store_root: str, cid: str) -> str:
    return f"husk:{store_key(store_root)}:{cid}"


def container_of_alias(store_root: str, alias: str) -> str | None:
    prefix = f"husk:{store_key(store_root)}:"
    return alias[len(prefix):] if alias.startswith(prefix) else None


BRIDGE_ALIAS = "husk-bridge"  # on every bridge husk makes: --bridge may name only those
