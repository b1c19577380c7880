import json

import click

from runtime.core import container


@click.command()
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.argument("container_id")
@click.pass_obj
def command(g, fmt, container_id):
    """The host pids of a container's processes (json: an array)."""
    pids = container.pids(g.root, container_id)
    if fmt == "json":
        click.echo(json.dumps(pids))
        return
    click.echo(f"{'PID':<10}CMD")
    for pid, cmd in container.command_lines(pids):
        click.echo(f"{pid:<10}{cmd}")
