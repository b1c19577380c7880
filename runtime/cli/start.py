import click

from runtime.core import container


@click.command()
@click.argument("container_id")
@click.pass_obj
def command(g, container_id):
    """Start a created container: its process execs the user program."""
    container.start(g.root, container_id)
