"""`husk volume create|ls|inspect|rm|prune`: named volumes (engine.volumes)."""

import json

import click


def _store(g):
    from runtime.engine.image.store import Store

    return Store(g.storage_root)


@click.group()
def command():
    """Manage volumes: directories in the store that containers mount (-v NAME:/DIR)."""


@command.command()
@click.option("--label", multiple=True, help="KEY=VALUE (repeatable).")
@click.argument("name", required=False)
@click.pass_obj
def create(g, label, name):
    """Create a volume (a random name if none is given)."""
    from runtime.engine import volumes

    labels = dict(item.partition("=")[::2] for item in label)
    click.echo(volumes.volume_create(_store(g), name, labels)["Name"])


@command.command("ls")
@click.option("--quiet", "-q", is_flag=True, help="Names only.")
@click.option("--format", "fmt", default=None, help="table, json, or a Go template ({{.Name}}).")
@click.pass_obj
def ls(g, quiet, fmt):
    """List volumes."""
    from runtime.cli._table import print_rows
    from runtime.engine import volumes

    metas = [volumes.volume_inspect(_store(g), m["Name"]) for m in volumes.listing(g.storage_root)]
    if quiet:
        for m in metas:
            click.echo(m["Name"])
        return
    print_rows(metas, fmt, "table {{.Driver}}\t{{.Name}}", {"Driver": "DRIVER", "Name": "VOLUME NAME"})


@command.command()
@click.option("--format", "-f", "fmt", default=None, help="A Go template ({{.Mountpoint}}).")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def inspect(g, fmt, names):
    """Show volumes in docker's JSON shape."""
    from runtime.engine import volumes
    from runtime.engine.inspect import render

    metas = [volumes.volume_inspect(_store(g), n) for n in names]
    if fmt:
        for m in metas:
            click.echo(render(fmt, m))
        return
    click.echo(json.dumps(metas, indent=2))


@command.command("rm")
@click.option("--force", "-f", is_flag=True, help="No error for a volume that is not there.")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def rm(g, force, names):
    """Remove volumes that no container uses."""
    from runtime.core.errors import ImageError
    from runtime.engine import volumes

    for name in names:
        try:
            volumes.volume_remove(_store(g), name)
        except ImageError as e:
            if not (force and "no such volume" in str(e)):
                raise
            continue
        click.echo(name)


@command.command()
@click.option("--all", "-a", "everything", is_flag=True, help="Named volumes too, not only anonymous ones.")
@click.option("--force", "-f", is_flag=True, help="Do not ask (husk never asks).")
@click.pass_obj
def prune(g, everything, force):
    """Remove the volumes no container uses."""
    from runtime.engine import volumes

    for name in volumes.volume_prune(_store(g), everything):
        click.echo(name)
