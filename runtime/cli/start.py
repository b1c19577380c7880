"""`husk start`: one verb for both faces, meaning "start this container".

    husk start ID              a created OCI container (runc; podman and containerd call it so)
    husk start [-a] NAME...    image containers by id, id prefix or name (docker)

runc's `start ID` and docker's `start NAME` are the same words (podman
sends no flag that could tell them apart), and they mean the same thing,
so nothing chooses between two meanings: each name is the container it
names, in this order: a created OCI container of that id (the C front
end starts it without Python), an image container by id, prefix or name,
and else an OCI container whose state runc's start explains ("is not
created", "does not exist").  An image container's own OCI container is
never left created: the engine starts it under the container's lock.
"""

import click

from runtime.core import container
from runtime.core.errors import NotFound


@click.command()
@click.option("--attach", "-a", is_flag=True, help="Image containers: print the output and exit with its code.")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def command(g, attach, names):
    """Start a created container (OCI), or stopped image containers (docker)."""
    from runtime.engine import lifecycle, logs, monitor
    from runtime.engine import record as records

    if attach and len(names) > 1:
        raise click.UsageError("--attach takes one container")
    for name in names:
        try:
            record = records.find(g.storage_root, name)
        except NotFound:
            container.start(g.root, name)  # an OCI container, or runc's error for an id it does not know
            continue
        offset = logs.log_size(g.storage_root, record.id) if attach else 0  # -a prints this run's output only
        record = lifecycle.start(g.root, g.storage_root, record.id)
        if not attach:
            click.echo(record.name)
            continue
        from runtime.cli.logs import print_line

        for line in logs.follow(g.storage_root, record.id, offset,
                                lambda: monitor.alive(g.storage_root, record.id) is True):
            print_line(line, False)
        return lifecycle.wait(g.root, g.storage_root, record.id)
