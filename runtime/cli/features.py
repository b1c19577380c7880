import json

import click

from runtime.core.oci.features import features


@click.command()
def command():
    """Print the runtime-spec features document."""
    click.echo(json.dumps(features(), indent=2))
