import json

import click

from runtime.core import container


@click.command(name="list")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--quiet", "-q", is_flag=True, help="Only the ids.")
@click.pass_obj
def command(g, fmt, quiet):
    """List containers."""
    rows = container.list_states(g.root)
    if quiet:
        for r in rows:
            click.echo(r["id"])
    elif fmt == "json":
        click.echo(json.dumps(rows))
    else:
        click.echo(f"{'ID':<24}{'PID':<10}{'STATUS':<10}{'BUNDLE':<40}CREATED")
        for r in rows:
            click.echo(f"{r['id']:<24}{r['pid']:<10}{r['status']:<10}{r['bundle']:<40}{r['created']}")
