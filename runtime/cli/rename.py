"""`husk rename OLD NEW`."""

import click


@click.command()
@click.argument("container")
@click.argument("new_name")
@click.pass_obj
def command(g, container, new_name):
    """Rename an image container (its name on its network too)."""
    from runtime.engine.image import containers
    from runtime.engine.image.store import Store

    containers.rename(Store(g.storage_root), container, new_name)
