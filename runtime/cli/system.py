"""`husk system prune`: clean up after crashes and stopped containers."""

import click


@click.group()
def command():
    """Whole-system housekeeping."""


@command.command()
@click.pass_obj
def prune(g):
    """Remove stopped image containers, what dead containers left in the
    network (addresses, rules, veths, namespaces), unused networks and
    unused image content."""
    import contextlib
    import os

    from runtime.core import container
    from runtime.core.errors import HuskError, NotFound
    from runtime.engine.image import containers as ctrs
    from runtime.engine.image import gc
    from runtime.engine.image.store import Store
    from runtime.engine.network import manage

    store = Store(g.storage_root)
    removed = 0
    for r in store.container_records():
        try:
            status = container.state(g.root, r["id"])["status"]
        except HuskError:
            status = "stopped"
        if status in ("running", "created", "paused"):
            continue
        with contextlib.suppress(NotFound):
            container.delete(g.root, r["id"], force=True)
        ctrs.destroy(store, r["id"])
        removed += 1
    # Crashed `husk run`s leave directories without a record: gone too.
    for cid in os.listdir(store.containers) if os.path.isdir(store.containers) else []:
        if not os.path.exists(os.path.join(store.containers, cid, "container.json")):
            ctrs.destroy(store, cid)
            removed += 1
    net = manage.stale(store.root, alive=lambda owner: os.path.isdir(store.container_dir(owner)))
    nets = manage.prune(store.root)
    content = gc.collect(store)
    click.echo(f"Removed {removed} containers, {net['addresses']} addresses, {net['rules']} rules, "
               f"{net['links']} veths, {net['netns']} namespaces, {len(nets)} networks, "
               f"{content['blobs']} blobs and {content['layers']} layers")
