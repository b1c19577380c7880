"""`husk ps`: one verb, two faces.

    husk ps [--format table|json] ID       the host pids of an OCI container (runc)
    husk ps [-a] [-q] [--format F]         image containers, as docker ps lists them
"""

import json

import click

from runtime.core import container

DOCKER_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
           "Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES", "RunningFor": "CREATED"}


@click.command()
@click.option("--format", "-f", "fmt", default=None,
              help="OCI: table or json.  Image containers: table, json, or a Go template ({{.Names}}).")
@click.option("--all", "-a", "show_all", is_flag=True, help="Image containers: stopped ones too.")
@click.option("--quiet", "-q", is_flag=True, help="Image containers: ids only.")
@click.argument("container_id", required=False)
@click.pass_obj
def command(g, fmt, show_all, quiet, container_id):
    """A container's processes (OCI, with an id), or the image containers (docker's ps)."""
    if container_id is None:
        return _docker_ps(g, fmt, show_all, quiet)
    if fmt not in (None, "table", "json"):
        raise click.BadParameter("with a container id: table or json", param_hint="--format")
    pids = container.pids(g.root, container_id)
    if fmt == "json":
        click.echo(json.dumps(pids))
        return
    click.echo(f"{'PID':<10}CMD")
    for pid, cmd in container.command_lines(pids):
        click.echo(f"{pid:<10}{cmd}")


def _docker_ps(g, fmt, show_all, quiet):
    from runtime.engine import record as records
    from runtime.engine.image.store import Store
    from runtime.engine.inspect import ps_row

    store = Store(g.storage_root)
    rows = [ps_row(g.root, store, r) for r in records.every(g.storage_root)]
    rows = [r for r in rows if show_all or r["State"] in ("running", "paused", "restarting")]
    rows.sort(key=lambda r: r["CreatedAt"], reverse=True)
    if quiet:
        for r in rows:
            click.echo(r["ID"])
        return
    from runtime.cli._table import print_rows

    print_rows(rows, fmt, DOCKER_TABLE, HEADERS)
