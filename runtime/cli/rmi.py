import click

from runtime.cli._image_opts import store


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.pass_obj
def command(g, images):
    """Remove image names; layers go when no other image or container uses them."""
    from runtime.engine.image import images as imgs

    for name in imgs.remove(store(g), list(images)):
        click.echo(f"Untagged: {name}")
