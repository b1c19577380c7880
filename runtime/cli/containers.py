import click


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def command(g, fmt):
    """List containers made by `husk run IMAGE`."""
    import json

    from runtime.engine.run import listing

    rows = listing(g.root, g.storage_root)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'CONTAINER ID':14} {'IMAGE':32} {'STATUS':14} NAME")
    for r in rows:
        click.echo(f"{r['id'][:12]:14} {r.get('image_name', '')[:32]:32} {r['status']:14} {r['name']}")
