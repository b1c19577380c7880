"""`husk start`: one verb, two faces.

    husk start ID              start a created OCI container (runc)
    husk start [-a] NAME...    run stopped image containers again (docker)
"""

import click

from runtime.core import container
from runtime.core.errors import HuskError


@click.command()
@click.option("--attach", "-a", is_flag=True, help="Image containers: print the output and exit with its code.")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def command(g, attach, names):
    """Start a created container (OCI), or stopped image containers (docker)."""
    if len(names) == 1 and not attach and (_is_created_oci(g.root, names[0])
                                           or not _image_container(g, names[0])):
        return container.start(g.root, names[0])  # runc's errors for an id it does not know
    from runtime.engine import lifecycle, logs, monitor

    if attach and len(names) > 1:
        raise click.UsageError("--attach takes one container")
    for name in names:
        offset = 0
        if attach:  # -a prints this run's output, not the log of runs before
            from runtime.engine.image import containers
            from runtime.engine.image.store import Store

            offset = logs.log_size(g.storage_root, containers.find(Store(g.storage_root), name)["id"])
        record = lifecycle.start(g.root, g.storage_root, name)
        if not attach:
            click.echo(record["name"])
            continue
        cid = record["id"]
        from runtime.cli.logs import _print

        for line in logs.follow(g.storage_root, cid, offset, lambda: monitor.alive(g.storage_root, cid) is True):
            _print(line, False)
        return lifecycle.wait(g.root, g.storage_root, cid)


def _is_created_oci(root: str, cid: str) -> bool:
    try:
        return container.state(root, cid)["status"] == "created"
    except HuskError:
        return False


def _image_container(g, text: str) -> bool:
    from runtime.engine.image import containers
    from runtime.engine.image.store import Store

    try:
        containers.find(Store(g.storage_root), text)
        return True
    except HuskError:
        return False
