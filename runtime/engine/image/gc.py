"""Garbage collection: remove blobs and unpacked layers that no image name
and no container references, and whatever failed commands left in tmp/.

It holds gc.lock exclusively, so no pull or container creation is halfway
through referencing content while it decides what is unused.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os

from runtime.core.paths import StoreLayout
from runtime.engine import record as records
from runtime.engine.image.store import Store, remove_tree


def referenced(store: Store) -> tuple[set[str], set[str]]:
    """(blob digests, layer diffIDs) that images and containers use."""
    blobs: set[str] = set()
    layers: set[str] = set()
    manifests = set(store.names().values())
    manifests |= {c.image for c in records.every(store.root)}
    for m in manifests:
        try:
            manifest = store.manifest(m)
            config = store.config(m)
        except (OSError, ValueError, KeyError):
            continue
        blobs.add(m)
        blobs.add(manifest["config"]["digest"])
        blobs.update(layer["digest"] for layer in manifest.get("layers", []))
        layers.update(config.get("rootfs", {}).get("diff_ids", []))
    return blobs, layers


def collect(store: Store, wait: bool = True) -> dict[str, int]:
    """Returns how many blobs and layers were removed (and bytes freed)."""
    removed = {"blobs": 0, "layers": 0, "bytes": 0}
    if not os.path.isdir(store.root):
        return removed
    lock = os.open(StoreLayout(store.root).gc_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return removed  # another command is pulling: the next prune collects
            raise
        blobs, layers = referenced(store)
        for algo in _listdir(store.blobs):
            for hexd in _listdir(os.path.join(store.blobs, algo)):
                if f"{algo}:{hexd}" not in blobs:
                    path = os.path.join(store.blobs, algo, hexd)
                    removed["bytes"] += os.path.getsize(path)
                    os.unlink(path)
                    removed["blobs"] += 1
        for algo in _listdir(store.layers):
            for name in _listdir(os.path.join(store.layers, algo)):
                hexd = name.removesuffix(".json")
                path = os.path.join(store.layers, algo, name)
                if not _is_hex(hexd):
                    # "<hex>.json.tmp<pid>": a metadata write (write, fsync,
                    # rename) that a SIGKILL stopped before the rename.
                    remove_tree(path)
                    continue
                if f"{algo}:{hexd}" not in layers:
                    if name.endswith(".json"):
                        os.unlink(path)
                    else:
                        removed["bytes"] += store.layer_info(f"{algo}:{hexd}").get("size", 0)
                        remove_tree(path)
                        removed["layers"] += 1
        for name in _listdir(store.tmp):
            remove_tree(os.path.join(store.tmp, name))
    finally:
        os.close(lock)
    return removed


def _is_hex(name: str) -> bool:
    return bool(name) and all(c in "0123456789abcdef" for c in name)


def _listdir(path: str) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return sorted(os.listdir(path))
    return []
