"""`husk system prune`: clean up after crashes and stopped containers.

Stopped image containers go with their runtime state; directories a
crashed `husk run` left without a record go; then what dead containers
left in the network (addresses, rules, veths, namespaces: only this
store's, engine.network.scope), networks no container uses, and image
content no image or container needs (engine.image.gc).
"""

from __future__ import annotations

import contextlib
import os

from runtime.core import container
from runtime.core.errors import NotFound
from runtime.core.paths import StoreLayout
from runtime.engine import lifecycle
from runtime.engine import record as records
from runtime.engine.image import containers as ctrs
from runtime.engine.image import gc
from runtime.engine.image.store import Store


def prune(root: str, store_root: str) -> dict[str, int]:
    from runtime.engine.network import manage  # pyroute2: only here

    store = Store(store_root)
    removed = 0
    for r in records.every(store_root):
        # Under the container's lock: a monitor's cleanup of the same
        # container waits, then finds it gone.
        with records.locked(store_root, r.id) as present:
            if not present or lifecycle.state_of(root, store, r)["Status"] in ("running", "paused", "restarting"):
                continue
            with contextlib.suppress(NotFound):
                container.delete(root, r.id, force=True)
            ctrs.destroy(store, r.id)
            removed += 1
    for cid in os.listdir(store.containers) if os.path.isdir(store.containers) else []:
        if not os.path.exists(StoreLayout(store.root).container_record(cid)):
            ctrs.destroy(store, cid)
            removed += 1
    net = manage.stale(store.root, alive=lambda owner: os.path.isdir(store.container_dir(owner)))
    nets = manage.prune(store.root)
    content = gc.collect(store)
    return {"containers": removed, **net, "networks": len(nets), **content}
