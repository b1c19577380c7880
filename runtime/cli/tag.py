import click

from runtime.cli._image_opts import store


@click.command()
@click.argument("source")
@click.argument("target")
@click.pass_obj
def command(g, source, target):
    """Give the image SOURCE names (a name or an ID prefix) one more name, TARGET."""
    from runtime.engine.image import push

    push.tag(store(g), source, target)
