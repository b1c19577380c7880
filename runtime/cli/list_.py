import json

import click

from runtime.core.errors import HuskError
from runtime.core.oci.state import ContainerState, list_ids


@click.command(name="list")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--quiet", "-q", is_flag=True, help="Only the ids.")
@click.pass_obj
def command(g, fmt, quiet):
    """List containers."""
    rows = []
    for cid in list_ids(g.root):
        try:
            st = ContainerState(g.root, cid).open()
        except HuskError:
            continue
        try:
            s = st.oci_state()
            s["created"] = (st.data.get("husk") or {}).get("created", "")
            rows.append(s)
        finally:
            st.unlock()
    if quiet:
        for r in rows:
            click.echo(r["id"])
    elif fmt == "json":
        click.echo(json.dumps(rows))
    else:
        click.echo(f"{'ID':<24}{'PID':<10}{'STATUS':<10}{'BUNDLE':<40}CREATED")
        for r in rows:
            click.echo(f"{r['id']:<24}{r['pid']:<10}{r['status']:<10}{r['bundle']:<40}{r['created']}")
