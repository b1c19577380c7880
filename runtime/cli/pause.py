import click

from runtime.core import container


@click.command()
@click.argument("container_id")
@click.pass_obj
def command(g, container_id):
    """Freeze every process of a running container (cgroup freezer)."""
    container.pause(g.root, container_id)
