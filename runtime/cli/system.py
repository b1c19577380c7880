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
    from runtime.engine.prune import prune as prune_all

    n = prune_all(g.root, g.storage_root)
    click.echo(f"Removed {n['containers']} containers, {n['addresses']} addresses, {n['rules']} rules, "
               f"{n['links']} veths, {n['netns']} namespaces, {n['networks']} networks, "
               f"{n['blobs']} blobs and {n['layers']} layers")
