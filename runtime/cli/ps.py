import json

import click

from runtime.core.cgroups.manager import manager_for
from runtime.core.errors import WrongState
from runtime.core.oci.state import ContainerState


@click.command()
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.argument("container_id")
@click.pass_obj
def command(g, fmt, container_id):
    """The host pids of a container's processes (json: an array)."""
    st = ContainerState(g.root, container_id)
    with st.locked():
        if st.status() == "stopped":
            raise WrongState("ps", f"container {container_id!r} is not running")
        pids = sorted(manager_for(st.data["husk"]["cgroup"]).pids())
    if fmt == "json":
        click.echo(json.dumps(pids))
        return
    click.echo(f"{'PID':<10}CMD")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        click.echo(f"{pid:<10}{cmd}")

