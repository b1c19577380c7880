import click

from runtime.core import container


@click.command()
@click.argument("container_id")
@click.pass_obj
def command(g, container_id):
    """Thaw a paused container."""
    container.resume(g.root, container_id)
