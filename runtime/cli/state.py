import json

import click

from runtime.core import container


@click.command()
@click.argument("container_id")
@click.pass_obj
def command(g, container_id):
    """Print a container's state as runtime-spec JSON."""
    click.echo(json.dumps(container.state(g.root, container_id), indent=2))
