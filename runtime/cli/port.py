"""`husk port NAME [PORT[/PROTO]]`: where a container's ports are published."""

import click


@click.command()
@click.argument("name")
@click.argument("port", required=False)
@click.pass_obj
def command(g, name, port):
    """The host addresses of a container's published ports."""
    from runtime.engine import record as records
    from runtime.engine.inspect import port_lines

    for line in port_lines(records.find(g.storage_root, name), port):
        click.echo(line)
