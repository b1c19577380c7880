import json

import click


@click.command()
@click.option("--format", "-f", "fmt", help="A Go template ({{.State.Status}}) instead of the JSON.")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def command(g, fmt, names):
    """Image containers in docker's inspect JSON."""
    from runtime.engine import record as records
    from runtime.engine.image.store import Store
    from runtime.engine.inspect import inspect, render

    store = Store(g.storage_root)
    found = [inspect(g.root, store, records.find(g.storage_root, name)) for name in names]
    if fmt:
        for value in found:
            click.echo(render(fmt, value))
        return
    click.echo(json.dumps(found, indent=4))
