"""`husk image ls|inspect|rm|prune|pull|push|tag|load|save`, as podman groups them."""

import json

import click

from runtime.cli import images as images_cmd
from runtime.cli import load as load_cmd
from runtime.cli import pull as pull_cmd
from runtime.cli import push as push_cmd
from runtime.cli import rmi as rmi_cmd
from runtime.cli import save as save_cmd
from runtime.cli import tag as tag_cmd
from runtime.cli._image_opts import store


@click.group()
def command():
    """Manage images."""


@command.command()
@click.argument("images", nargs=-1, required=True)
@click.pass_obj
def inspect(g, images):
    """Show an image's config, layers and manifest as JSON."""
    from runtime.engine.image import images as imgs

    click.echo(json.dumps([imgs.inspect(store(g), i) for i in images], indent=2))


@command.command()
@click.pass_obj
def prune(g):
    """Remove blobs and layers no image or container uses."""
    from runtime.engine.image import images as imgs

    r = imgs.prune(store(g))
    click.echo(f"Removed {r['blobs']} blobs and {r['layers']} layers, {r['bytes'] / 1e6:.1f} MB")


command.add_command(images_cmd.command, "ls")
command.add_command(rmi_cmd.command, "rm")
command.add_command(pull_cmd.command, "pull")
command.add_command(push_cmd.command, "push")
command.add_command(tag_cmd.command, "tag")
command.add_command(load_cmd.command, "load")
command.add_command(save_cmd.command, "save")
