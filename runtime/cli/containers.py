import click

from runtime.cli._image_opts import store


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def command(g, fmt):
    """List containers made by `husk run IMAGE`."""
    import json

    from runtime.core import container
    from runtime.core.errors import HuskError

    rows = []
    for r in store(g).container_records():
        try:
            status = container.state(g.root, r["id"])["status"]
        except HuskError:
            status = r.get("status", "")
            if "exit_code" in r:
                status = f"exited ({r['exit_code']})"
        rows.append(dict(r, status=status))
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'CONTAINER ID':14} {'IMAGE':32} {'STATUS':14} NAME")
    for r in rows:
        click.echo(f"{r['id'][:12]:14} {r.get('image_name', '')[:32]:32} {r['status']:14} {r['name']}")
